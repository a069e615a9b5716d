"""GPIO controller board (gpiozero): pilot, contactor, RCD, lock, temperature."""
