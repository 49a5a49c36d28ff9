"""The monitor-throughput benchmark consumes every record and explains as it was told."""

from __future__ import annotations

import re

import pytest

from loadtests import monitor_throughput


@pytest.mark.parametrize(("args", "explaining"), [
    ([], None),
    (["--explain"], "explaining within 2 us per record"),
    (["--explain-budget", "0.5"], "explaining within 0.5 us per record"),
])
def test_consumes_every_record_logged(demo_models, capsys, args, explaining) -> None:
    assert monitor_throughput.main(["--records", "1280", "--batch", "500", *args]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert ": 1280 records in " in line
    if explaining is None:
        assert "explain" not in line
    else:
        found = re.search(r"explaining (.+?): (\d+) explained", line)
        assert found is not None, line
        assert found[1] == explaining.removeprefix("explaining ")
        assert 0 < int(found[2]) <= 1280  # the stream the runner used did explain records
