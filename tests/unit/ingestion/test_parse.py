import json

import pytest

from services.ingestion.domain.errors import BadInput, UnsupportedType
from services.ingestion.domain.parse import Limits, parse

LIMITS = Limits(max_columns=5, max_field_chars=100)


def rows(body: bytes, content_type: str = "text/csv"):
    return parse(body, content_type, LIMITS).table.to_pylist()


def test_csv_with_bom_crlf_quoted_commas_and_newlines():
    body = '\ufeffname,notes,score\r\n"Smith, J","line one\r\nline two",3\r\nLee,"say ""hi""",4\r\n'.encode()
    assert rows(body) == [
        {"name": "Smith, J", "notes": "line one\r\nline two", "score": "3"},
        {"name": "Lee", "notes": 'say "hi"', "score": "4"},
    ]


@pytest.mark.parametrize("marker", ["", "NA", "N/A", "null", "NaN"])
def test_missing_markers_read_as_missing(marker):
    assert rows(f"a,b\n{marker},1\n".encode()) == [{"a": None, "b": "1"}]


def test_values_stay_strings_so_leading_zeros_survive():
    assert rows(b"zip,n\n00501,1\n") == [{"zip": "00501", "n": "1"}]


def test_rows_with_the_wrong_number_of_fields_are_named_by_row_number():
    parsed = parse(b"a,b\n1,2\n3,4,5\n6,7\n8\n", "text/csv", LIMITS)
    assert parsed.table.to_pylist() == [{"a": "1", "b": "2"}, {"a": "6", "b": "7"}]
    assert parsed.row_numbers == [1, 3]
    assert [(p.row, p.reason) for p in parsed.problems] == [
        (2, "has 3 fields, the header has 2"),
        (4, "has 1 fields, the header has 2"),
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "the body is empty"),
        (b"  \n", "the body is empty"),
        (b"a,b\n", "header but no data rows"),
        (b"a,b\n1,\xff\n", "not UTF-8 text: byte 0xff at line 2"),
        (b"a,a\n1,2\n", "names ['a'] more than once"),
        (b"a,,c\n1,2,3\n", "column(s) [2] of the header have no name"),
        (b"a,b,c,d,e,f\n1,2,3,4,5,6\n", "6 columns; the limit is 5"),
        (b'a,b\n1,"2\n3,4\n', "quote that is never closed"),
        (b'a,b\n1,"2"x,3\n', "malformed at line 2"),
    ],
)
def test_unreadable_csv_is_a_clear_bad_input(body, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse(body, "text/csv", LIMITS)


def test_latin1_text_is_refused_with_the_fix():
    with pytest.raises(BadInput, match="save the file as UTF-8"):
        parse("name\nJosé\n".encode("latin-1"), "text/csv", LIMITS)


def test_json_records_with_different_keys_become_columns_of_strings():
    body = json.dumps([{"x": 1, "ok": True, "tags": ["a"]}, {"x": 2.5, "y": None, "z": "NA"}]).encode()
    assert rows(body, "application/json") == [
        {"x": "1", "ok": "true", "tags": '["a"]', "y": None, "z": None},
        {"x": "2.5", "ok": None, "tags": None, "y": None, "z": None},
    ]


def test_ndjson_skips_blank_lines_and_names_the_bad_one():
    assert rows(b'{"a": 1}\n\n{"a": 2}\n', "application/x-ndjson") == [{"a": "1"}, {"a": "2"}]
    with pytest.raises(BadInput, match="line 2 is not valid JSON"):
        parse(b'{"a": 1}\n{"a": \n', "application/x-ndjson", LIMITS)


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"a": 1}', "must be a list of records"),
        (b"[1, 2]", "record 1 is int"),
        (b"[]", "holds no records"),
        (b"[{", "not valid JSON"),
    ],
)
def test_bad_json_bodies(body, message):
    with pytest.raises(BadInput, match=message):
        parse(body, "application/json", LIMITS)


def test_content_type_parameters_and_aliases_are_understood():
    assert rows(b"a\n1\n", "text/csv; charset=utf-8") == [{"a": "1"}]
    assert rows(b'{"a": 1}\n', "application/jsonl") == [{"a": "1"}]


def test_unknown_content_type_is_415_with_the_accepted_ones():
    with pytest.raises(UnsupportedType, match="text/csv, application/json, application/x-ndjson"):
        parse(b"a\n1\n", "application/xml", LIMITS)
