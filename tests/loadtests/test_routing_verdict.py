"""The routing-changes benchmark's verdict: its exit code enforces the 2 s target."""

from __future__ import annotations

from loadtests.routing_changes import Answer, ChangeResult, LoadClient, verdict


def results(*seconds: float) -> list[ChangeResult]:
    return [ChangeResult("promote", i + 1, s, 0.05, 0) for i, s in enumerate(seconds)]


def load(*statuses: int) -> LoadClient:
    client = LoadClient(["http://127.0.0.1:1"], "m", [{}])
    client.answers = [Answer(float(i), "u", s, "v", []) for i, s in enumerate(statuses)]
    return client


def test_median_within_target_and_no_failures_passes(capsys):
    assert verdict(results(0.5, 0.7, 3.0), load(200, 200), 2.0) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_median_over_target_fails_with_the_reason(capsys):
    assert verdict(results(1.5, 2.5, 2.6), load(200), 2.0) == 1
    assert "median 2.500 s over the 2 s target" in capsys.readouterr().out


def test_a_failed_request_fails(capsys):
    assert verdict(results(0.4), load(200, 503, 200), 2.0) == 1
    assert "1 failed requests" in capsys.readouterr().out
