"""Parses Prometheus text from the file named by its argument with prometheus_client's own parser and prints the families
as JSON: [{"name", "type", "help", "samples": [{"name", "labels", "value"}]}].

prometheus_client names a counter's family without its `_total` suffix; the samples keep it.
A text the parser refuses exits non-zero with its error. Used by MetricsExpositionTests.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()

families = []
for family in text_string_to_metric_families(text):
    families.append({
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    })
json.dump(families, sys.stdout)
