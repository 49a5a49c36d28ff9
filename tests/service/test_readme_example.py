"""The README's first example answers what the README says it answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_predict_example_matches_the_demo_model(client):
    text = README.read_text()
    request = re.search(r"curl -s localhost:3000/predict .*? -d '(\{.*?\})'", text, re.S)
    assert request, "the README's first /predict example is gone"
    shown = re.search(r'"predictions":\["(\w+)"\],\s*#\s*"probabilities":\[\{"high":(\d\.\d+)',
                      text)
    assert shown
    response = client.post("/predict", json=json.loads(request.group(1)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == [shown.group(1)]
    assert f"{body['probabilities'][0]['high']:.3f}" == shown.group(2)
