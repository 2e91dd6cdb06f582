"""ElastAlert 2 rule files, unchanged, running on cloudsoc's ECS documents in real time.

``load_elastalert(text, source)`` reads one rule file into an :class:`ElastalertRule` (a
:class:`cloudsoc.detect.rule.Rule`): its ``filter`` compiled into a predicate (Elasticsearch query DSL and Lucene
``query_string``), its rule type (any, frequency, spike, flatline, new_term, cardinality, change, blacklist,
whitelist, percentage_match) as an event-time aggregator, and its alerters mapped onto output configs
(``rule.output_configs``). ``is_elastalert(data)`` tells an ElastAlert rule from a Sigma one.
See ``docs/specs/rules-elastalert.md``.
"""

from cloudsoc.detect.elastalert.loader import RULE_TYPES, is_elastalert, load_elastalert, rule_id_of
from cloudsoc.detect.elastalert.rule import ElastalertRule

__all__ = ["RULE_TYPES", "ElastalertRule", "is_elastalert", "load_elastalert", "rule_id_of"]
