"""When `hub up` starts its worker again after a crash, and when it gives up."""

from __future__ import annotations

from hub.runtime.processes import CONFIGURATION_ERROR, RestartPolicy


def test_a_crash_is_restarted_after_a_delay_that_doubles_while_crashes_come_close_together() -> None:
    policy = RestartPolicy()
    assert [policy.after_crash(at, -9) for at in (0.0, 5.0, 10.0, 15.0)] == [1.0, 2.0, 4.0, 8.0]


def test_a_crash_loop_is_given_up_with_a_reason_rather_than_restarted_for_ever() -> None:
    policy = RestartPolicy()
    delays = [policy.after_crash(at, 1) for at in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and delays[4] is None


def test_crashes_far_apart_start_again_from_the_shortest_delay() -> None:
    policy = RestartPolicy()
    assert policy.after_crash(0.0, -9) == 1.0
    assert policy.after_crash(1000.0, -9) == 1.0


def test_a_worker_that_refused_its_configuration_is_not_restarted() -> None:
    assert RestartPolicy().after_crash(0.0, CONFIGURATION_ERROR) is None
