"""Parses an OpenMetrics exposition (stdin) with prometheus_client's strict parser, the one the
Prometheus project maintains for Python, and prints its families as JSON for the Rust test:
{"family": {"type": "counter", "samples": [{"name": ..., "labels": {...}, "value": ...}]}}.
A malformed exposition fails here with the parser's own message (exit status 1)."""

import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {
                "name": s.name,
                "labels": s.labels,
                # JSON has no infinity; no sample of ours is one (a bucket's bound is a label).
                "value": None if math.isinf(s.value) or math.isnan(s.value) else s.value,
            }
            for s in family.samples
        ],
    }
json.dump(families, sys.stdout)
