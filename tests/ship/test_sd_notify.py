"""sd_notify protocol against a real datagram socket bound by the test (playing systemd)."""

from __future__ import annotations

from typing import Any

from evse.sd_notify import Notifier


def test_noop_without_notify_socket() -> None:
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    assert notifier.watchdog_interval_s() is None


async def test_messages_arrive_as_datagrams(notify_socket: Any) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": notify_socket.address})
    assert notifier.enabled
    assert notifier.ready("hardware ready, contactors open")
    assert await notify_socket.next() == "READY=1\nSTATUS=hardware ready, contactors open"
    assert notifier.status("CSMS connected\nconnector 1: Available")
    assert await notify_socket.next() == "STATUS=CSMS connected connector 1: Available"
    assert notifier.watchdog()
    assert await notify_socket.next() == "WATCHDOG=1"
    assert notifier.stopping()
    assert await notify_socket.next() == "STOPPING=1"
    notifier.close()


async def test_abstract_namespace_socket(abstract_notify_socket: Any) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": abstract_notify_socket.address})
    assert notifier.ready()
    assert await abstract_notify_socket.next() == "READY=1"


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier(environ=env).watchdog_interval_s() == 15.0
    # WATCHDOG_PID names the process the timeout is meant for.
    assert Notifier(environ={**env, "WATCHDOG_PID": "4242"}, pid=4242).watchdog_interval_s() == 15
    assert Notifier(environ={**env, "WATCHDOG_PID": "4242"}, pid=1).watchdog_interval_s() is None
    assert Notifier(environ={**env, "WATCHDOG_USEC": "0"}).watchdog_interval_s() is None
    assert Notifier(environ={**env, "WATCHDOG_USEC": "junk"}).watchdog_interval_s() is None


def test_send_failure_is_reported_not_raised(short_tmp: object) -> None:
    notifier = Notifier(environ={"NOTIFY_SOCKET": "/nonexistent/evse/notify"})
    assert notifier.enabled
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False


def test_unsupported_address_is_disabled() -> None:
    assert not Notifier(environ={"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
