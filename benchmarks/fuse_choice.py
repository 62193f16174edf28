"""Pick the routing rule and temperature on validation: the pair whose best deployable strategy (output
space, cached answers) has the highest mean accuracy. Usage: python fuse_choice.py DIR > choice.json"""

import json
import sys
from pathlib import Path

rows = []
for path in sorted(Path(sys.argv[1]).glob("validation_*_output.json")):
    result = json.loads(path.read_text())
    for r in result["strategies"]:
        if r["strategy"] != "oracle":
            rows.append({"rule": r["rule"], "temperature": r["temperature"], "strategy": r["strategy"], "space": r["space"],
                         "mean_accuracy": r["mean_accuracy"], "routing_accuracy": r["routing_accuracy"],
                         "mean_oracle_accuracy": r["mean_oracle_accuracy"]})
best = max(rows, key=lambda r: (r["mean_accuracy"], -r["temperature"]))
print(json.dumps(dict(best, candidates=rows), indent=1))
