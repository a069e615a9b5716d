"""The ``sim`` backend: a simulated controller board with one simulated EV per connector."""
