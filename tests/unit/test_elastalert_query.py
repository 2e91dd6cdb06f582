"""ElastAlert filters: Elasticsearch query DSL and Lucene query_string compiled into predicates over ECS documents.

Semantics are those of Elasticsearch 7 over an ECS index template (keyword fields exact, free-text `message`
analysed), checked on real CloudTrail records from ../shared/data and on small documents for the edge cases.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudsoc.detect.elastalert import lucene
from cloudsoc.detect.elastalert.query import FilterError, Query, compile_filters, compile_query
from cloudsoc.detect.engine import RuleIndex
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cloudaudit"
PANTHER = DATA / "panther-cloudtrail-rules"


@cache
def panther(file_name: str, test_name: str) -> dict[str, Any]:
    spec = yaml.safe_load((PANTHER / file_name).read_text(encoding="utf-8"))
    (log,) = (t["Log"] for t in spec["Tests"] if t["Name"] == test_name)
    return AwsCloudtrail().parse(log)


def login() -> dict[str, Any]:
    """A real console login without MFA (Panther's test record), as our parser makes it."""
    return copy.deepcopy(panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User"))


def matches(query: Any, doc: dict[str, Any]) -> bool:
    compiled = compile_filters(query if isinstance(query, list) else [query])
    return compiled.test(doc) is not None


def qs(text: str, **options: Any) -> dict[str, Any]:
    return {"query": {"query_string": {"query": text, **options}}}


def test_real_login_record_is_what_we_expect() -> None:
    doc = login()
    assert doc["event"]["action"] == "ConsoleLogin"
    assert doc["source"]["ip"] == "111.111.111.111"
    assert doc["user"]["name"] == "tester"
    assert doc["cloudsoc"]["mfa"] is False


# -- term-level queries --------------------------------------------------------------------------------------------


def test_term_is_exact_and_case_sensitive_on_keyword_fields() -> None:
    doc = login()
    assert matches({"term": {"event.action": "ConsoleLogin"}}, doc)
    assert not matches({"term": {"event.action": "consolelogin"}}, doc)
    assert matches({"term": {"event.action": {"value": "consolelogin", "case_insensitive": True}}}, doc)
    assert matches({"term": {"event.action.keyword": "ConsoleLogin"}}, doc)  # the exact sub-field of a text field
    assert not matches({"term": {"event.action": "Console"}}, doc)


def test_term_coerces_booleans_numbers_and_ips_like_elasticsearch() -> None:
    doc = login()
    assert matches({"term": {"cloudsoc.mfa": False}}, doc)
    assert matches({"term": {"cloudsoc.mfa": "false"}}, doc)
    assert not matches({"term": {"cloudsoc.mfa": True}}, doc)
    doc["event"]["code"] = 4625
    assert matches({"term": {"event.code": "4625"}}, doc)
    assert matches({"term": {"event.code": 4625}}, doc)
    assert matches({"term": {"source.ip": "111.111.0.0/16"}}, doc)  # an `ip` field matches a CIDR
    assert not matches({"term": {"source.ip": "10.0.0.0/8"}}, doc)
    doc["source"]["ip"] = "2001:db8::1"
    assert matches({"term": {"source.ip": "2001:0db8:0:0::1"}}, doc)  # IPv6 compared as an address


def test_terms_and_arrays() -> None:
    doc = login()
    assert matches({"terms": {"event.action": ["GetObject", "ConsoleLogin"]}}, doc)
    assert not matches({"terms": {"event.action": ["GetObject"]}}, doc)
    assert matches({"term": {"related.ip": "111.111.111.111"}}, doc)  # one value of an array is enough
    doc["tags"] = ["a", "b"]
    assert matches({"term": {"tags": "b"}}, doc)


def test_fields_resolve_through_dotted_keys_arrays_of_objects_and_raw_records() -> None:
    doc = login()
    assert matches({"term": {"aws.cloudtrail.responseElements.ConsoleLogin": "Success"}}, doc)
    doc["flat"] = {"user.name": "alice"}
    assert matches({"term": {"flat.user.name": "alice"}}, doc)
    doc["process"] = {"args": [{"name": "sh"}, {"name": "curl"}]}
    assert matches({"term": {"process.args.name": "curl"}}, doc)


def test_null_and_missing_values_do_not_exist() -> None:
    doc = login()
    doc["user"]["email"] = None
    doc["empty"] = []
    assert not matches({"exists": {"field": "user.email"}}, doc)
    assert not matches({"exists": {"field": "empty"}}, doc)
    assert not matches({"exists": {"field": "no.such.field"}}, doc)
    assert matches({"exists": {"field": "user.name"}}, doc)
    assert matches({"exists": {"field": "aws.cloudtrail.additionalEventData.*"}}, doc)
    assert matches({"missing": {"field": "user.email"}}, doc)


def test_wildcard_prefix_and_regexp_match_the_whole_value() -> None:
    doc = login()
    assert matches({"wildcard": {"event.action": "Console*"}}, doc)
    assert matches({"wildcard": {"event.action": {"value": "console?ogin", "case_insensitive": True}}}, doc)
    assert not matches({"wildcard": {"event.action": "Login*"}}, doc)
    assert matches({"prefix": {"user_agent.original": "Mozi"}}, doc)
    assert not matches({"prefix": {"user_agent.original": "ozilla"}}, doc)
    assert matches({"regexp": {"source.ip": "111\\.[0-9]+\\.111\\.111"}}, doc)
    assert not matches({"regexp": {"source.ip": "111"}}, doc)  # anchored, as Lucene regexps are


def test_ranges_on_numbers_dates_ips_and_strings() -> None:
    doc = login()
    assert matches({"range": {"@timestamp": {"gte": "2019-01-01", "lt": "2019-01-02"}}}, doc)
    assert not matches({"range": {"@timestamp": {"gt": "2019-01-01T00:00:00Z"}}}, doc)
    assert matches({"range": {"@timestamp": {"lte": "now-1d/d"}}}, doc)
    doc["@timestamp"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert matches({"range": {"@timestamp": {"gte": "now-1h"}}}, doc)
    assert matches({"range": {"source.ip": {"gte": "111.111.0.0", "lte": "111.111.255.255"}}}, doc)
    assert not matches({"range": {"source.ip": {"gte": "10.0.0.0", "lte": "10.255.255.255"}}}, doc)
    doc["bytes"] = 1500
    assert matches({"range": {"bytes": {"gt": 1000, "lte": "1500"}}}, doc)
    assert not matches({"range": {"bytes": {"from": 1500, "include_lower": False}}}, doc)
    assert matches({"range": {"user.name": {"gte": "t", "lt": "u"}}}, doc)


def test_ids_match_event_ids() -> None:
    doc = login()
    assert matches({"ids": {"values": ["1"]}}, doc)
    assert not matches({"ids": {"values": ["2"]}}, doc)


def test_message_is_analysed_text_unless_named_keyword() -> None:
    doc = {"message": "Failed password for Invalid user admin from 10.1.2.3 port 22"}
    assert matches({"match": {"message": "failed PASSWORD"}}, doc)
    assert matches({"match": {"message": {"query": "password nothing", "operator": "or"}}}, doc)
    assert not matches({"match": {"message": {"query": "password nothing", "operator": "and"}}}, doc)
    assert matches({"match_phrase": {"message": "invalid user admin"}}, doc)
    assert not matches({"match_phrase": {"message": "user invalid"}}, doc)
    assert matches({"term": {"message": "password"}}, doc)  # a term meets the analysed (lower-cased) words
    assert not matches({"term": {"message": "Password"}}, doc)
    assert matches(qs("message:failed AND message:ADMIN"), doc)
    assert matches(qs('message:"from 10.1.2.3"'), doc)
    assert matches(qs("message:pass*"), doc)
    assert not matches({"term": {"message.keyword": "password"}}, doc)
    assert matches({"match": {"event.action": "ConsoleLogin"}}, login())  # match on a keyword field is exact
    assert not matches({"match": {"event.action": "consolelogin"}}, login())


# -- compound queries ----------------------------------------------------------------------------------------------


def test_bool_clauses_and_elasticsearch_7_should_defaults() -> None:
    doc = login()
    yes, no = {"term": {"event.action": "ConsoleLogin"}}, {"term": {"event.action": "GetObject"}}
    assert matches({"bool": {"must": [yes], "must_not": [no]}}, doc)
    assert not matches({"bool": {"filter": [yes], "must_not": [yes]}}, doc)
    assert matches({"bool": {"should": [no, yes]}}, doc)
    assert not matches({"bool": {"should": [no]}}, doc)  # no must/filter: one should clause is required
    assert matches({"bool": {"must": [yes], "should": [no]}}, doc)  # with must, should is optional
    assert not matches({"bool": {"must": [yes], "should": [no], "minimum_should_match": 1}}, doc)
    assert not matches({"bool": {"should": [yes, no], "minimum_should_match": "100%"}}, doc)
    assert matches({"bool": {"should": [yes, no], "minimum_should_match": "50%"}}, doc)
    assert matches({"bool": {"must_not": [no]}}, doc)


def test_legacy_and_wrapper_forms() -> None:
    doc = login()
    yes, no = {"term": {"event.action": "ConsoleLogin"}}, {"term": {"event.action": "GetObject"}}
    assert matches({"and": [yes, {"exists": {"field": "user.name"}}]}, doc)
    assert matches({"or": {"filters": [no, yes]}}, doc)
    assert matches({"not": no}, doc)
    assert not matches({"not": {"filter": yes}}, doc)
    assert matches({"constant_score": {"filter": yes}}, doc)
    assert matches({"query": {"bool": {"must": [yes]}}}, doc)
    assert matches({"match_all": {}}, doc)
    assert not matches({"match_none": {}}, doc)
    assert matches([], doc)  # no filter: every event
    assert not matches([yes, no], doc)  # filter items are ANDed


def test_hits_explain_the_match() -> None:
    compiled = compile_filters(
        [qs("event.action:ConsoleLogin AND NOT user.name:root"), {"exists": {"field": "source.ip"}}]
    )
    assert compiled.test(login()) == [("event.action", "ConsoleLogin"), ("source.ip", "111.111.111.111")]


# -- query_string ----------------------------------------------------------------------------------------------------


def test_query_string_boolean_logic_follows_lucene() -> None:
    doc = login()
    assert matches(qs("event.action:ConsoleLogin AND user.name:tester"), doc)
    assert not matches(qs("event.action:ConsoleLogin AND user.name:root"), doc)
    assert matches(qs("event.action:GetObject OR user.name:tester"), doc)
    assert matches(qs("user.name:tester -event.action:GetObject"), doc)
    assert not matches(qs("user.name:tester -event.action:ConsoleLogin"), doc)
    assert matches(qs("NOT event.action:GetObject"), doc)  # a purely negative query matches all the others
    assert matches(qs("!event.action:GetObject && user.name:tester"), doc)
    # Lucene's precedence: `a AND b OR c` is `+a +b c`, so c is optional ...
    assert matches(qs("event.action:ConsoleLogin AND user.name:tester OR user.name:nobody"), doc)
    # ... and `a OR b AND c` is `a +b +c`: b and c are required, a is not.
    assert not matches(qs("event.action:ConsoleLogin OR user.name:nobody AND source.ip:111.111.111.111"), doc)
    assert matches(qs("event.action:(GetObject OR ConsoleLogin) AND (user.name:tester OR user.name:root)"), doc)
    assert matches(qs("event.action:GetObject user.name:tester"), doc)  # default operator OR
    assert not matches(qs("event.action:GetObject user.name:tester", default_operator="AND"), doc)


def test_query_string_terms_phrases_wildcards_ranges_and_existence() -> None:
    doc = login()
    assert matches(qs('user.name:"tester"'), doc)
    assert not matches(qs('user.name:"test"'), doc)  # a phrase on a keyword field is the whole value
    assert matches(qs('source.ip:"111.111.0.0/16"'), doc)
    assert matches(qs("event.action:Console*"), doc)
    assert matches(qs("event.action:Console?ogin"), doc)
    assert not matches(qs("event.action:Console\\*"), doc)  # an escaped star is a literal star
    assert matches(qs("event.action:/Con.*gin/"), doc)
    assert matches(qs("@timestamp:[2019-01-01 TO 2019-01-02]"), doc)
    assert not matches(qs("@timestamp:{2019-01-01T00:00:00Z TO *]"), doc)
    assert matches(qs("@timestamp:>=2018-12-31"), doc)
    assert matches(qs("_exists_:user.name AND NOT _exists_:user.email"), doc)
    assert matches(qs("user.name:*"), doc)
    assert matches(qs("cloudsoc.mfa:false"), doc)


def test_query_string_default_fields() -> None:
    doc = login()
    assert matches(qs("ConsoleLogin"), doc)  # every field (default_field *)
    assert not matches(qs("consolelogin"), doc)  # keyword fields stay exact
    assert matches(qs("tester", fields=["user.name", "source.ip"]), doc)
    assert not matches(qs("tester", default_field="source.ip"), doc)
    assert matches(qs("tester", default_field="user.*"), doc)


def test_query_string_on_the_raw_record() -> None:
    doc = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    assert matches(qs("aws.cloudtrail.additionalEventData.MFAUsed:No AND aws.cloudtrail.eventName:ConsoleLogin"), doc)


def test_lucene_parser_errors_say_where() -> None:
    for text, where in [("a AND", 5), ("(a", 2), ("f:[1 TO", 2), ('"abc', 0), ("a\\", 1)]:
        with pytest.raises(lucene.LuceneError) as err:
            lucene.parse(text)
        assert err.value.position == where, text
    with pytest.raises(FilterError, match=r"filter\[0\]\.query\.query_string: 'a AND'"):
        compile_filters([qs("a AND")])


def test_unsupported_and_malformed_queries_are_errors() -> None:
    with pytest.raises(FilterError, match=r"filter\[1\]\.geo_distance: query type 'geo_distance' is not supported"):
        compile_filters([{"term": {"a": 1}}, {"geo_distance": {}}])
    with pytest.raises(FilterError, match="terms lookup"):
        compile_filters([{"terms": {"user.name": {"index": "users", "id": "1", "path": "names"}}}])
    with pytest.raises(FilterError, match="exactly one field"):
        compile_filters([{"term": {"a": 1, "b": 2}}])
    with pytest.raises(FilterError, match="one query per item"):
        compile_filters([{"term": {"a": 1}, "terms": {"b": [2]}}])
    with pytest.raises(FilterError, match=r"bool\.must\[0\]: must be an Elasticsearch query"):
        compile_filters([{"bool": {"must": ["event.action:x"]}}])
    with pytest.raises(FilterError, match="unknown option"):
        compile_filters([{"range": {"a": {"gte": 1, "greater": 2}}}])
    with pytest.raises(FilterError, match="must be a list"):
        compile_filters({"term": {"a": 1}})  # type: ignore[arg-type]


# -- index keys ------------------------------------------------------------------------------------------------------


def pins(*filters: Any) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    compiled = compile_filters(list(filters))
    return compiled.actions, compiled.datasets


def test_filters_that_pin_event_action_give_index_keys() -> None:
    assert pins({"term": {"event.action": "ConsoleLogin"}}) == (frozenset({"consolelogin"}), None)
    assert pins({"terms": {"event.action": ["A", "b"]}}) == (frozenset({"a", "b"}), None)
    assert pins(qs("event.action:ConsoleLogin OR event.action:GetObject")) == (
        frozenset({"consolelogin", "getobject"}),
        None,
    )
    assert pins(qs("event.action:(A OR B) AND user.name:x")) == (frozenset({"a", "b"}), None)
    assert pins({"terms": {"event.action": ["A", "B"]}}, {"term": {"event.action": "B"}}) == (frozenset({"b"}), None)
    assert pins({"term": {"aws.cloudtrail.eventName": "StopLogging"}}) == (
        frozenset({"stoplogging"}),
        frozenset({"aws.cloudtrail"}),
    )
    assert pins({"term": {"event.dataset": "aliyun.actiontrail"}}) == (None, frozenset({"aliyun.actiontrail"}))
    assert pins({"exists": {"field": "aliyun.actiontrail.requestParameters.PolicyName"}}) == (
        None,
        frozenset({"aliyun.actiontrail"}),
    )


def test_filters_that_do_not_pin_give_none() -> None:
    assert pins(qs("event.action:ConsoleLogin OR user.name:x")) == (None, None)
    assert pins(qs("NOT event.action:ConsoleLogin")) == (None, None)
    assert pins({"wildcard": {"event.action": "Console*"}}) == (None, None)
    assert pins({"bool": {"must": [{"term": {"user.name": "x"}}], "should": [{"term": {"event.action": "A"}}]}}) == (
        None,
        None,
    )
    assert pins({"term": {"event.action": {"value": "X", "case_insensitive": True}}}) == (None, None)
    assert pins() == (None, None)


def test_the_rule_index_uses_the_keys() -> None:
    from cloudsoc.detect.elastalert import load_elastalert

    pinned = load_elastalert("name: a\ntype: any\nfilter: [{term: {event.action: ConsoleLogin}}]\n", "a.yaml")
    loose = load_elastalert("name: b\ntype: any\nfilter: [{term: {user.name: tester}}]\n", "b.yaml")
    other = load_elastalert("name: c\ntype: any\nfilter: [{term: {aws.cloudtrail.eventName: GetObject}}]\n", "c.yaml")
    index = RuleIndex([pinned, loose, other])
    assert [r.id for r in index.candidates(login())] == ["a", "b"]
    assert [m.rule_id for m in index.select([login()])] == ["a", "b"]


def test_compile_query_for_one_item() -> None:
    single: Query = compile_query({"term": {"event.outcome": "success"}}, "match_bucket_filter")
    assert single.test(login()) == [("event.outcome", "success")]
