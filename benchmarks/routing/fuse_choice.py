"""Pick the routing rule and temperature on validation: the pair whose best deployable strategy (output
space, cached answers) has the highest mean accuracy. Usage: python benchmarks/routing/fuse_choice.py DIR > choice.json"""

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", help="the folder of fuse_bank.sh's validation_*_output.json files")
    rows = []
    for path in sorted(Path(ap.parse_args().folder).glob("validation_*_output.json")):
        result = json.loads(path.read_text())
        for r in result["strategies"]:
            if r["strategy"] != "oracle":
                rows.append({"rule": r["rule"], "temperature": r["temperature"], "strategy": r["strategy"], "space": r["space"],
                             "mean_accuracy": r["mean_accuracy"], "routing_accuracy": r["routing_accuracy"],
                             "mean_oracle_accuracy": r["mean_oracle_accuracy"]})
    best = max(rows, key=lambda r: (r["mean_accuracy"], -r["temperature"]))
    print(json.dumps(dict(best, candidates=rows), indent=1))


if __name__ == "__main__":
    main()
