"""Stored arguments: the shortcut for calls without any."""

from __future__ import annotations

from backburner.jobs.serializer import decode_arguments, encode_arguments


def test_a_call_without_arguments_decodes_to_fresh_empty_ones() -> None:
    stored = encode_arguments((), {})

    args, kwargs = decode_arguments(stored)
    kwargs["changed"] = True  # a job may change what it was given

    assert args == ()
    assert decode_arguments(stored) == ((), {})


def test_the_same_document_spelt_otherwise_decodes_the_same() -> None:
    assert decode_arguments(' {"kwargs": {}, "args": []}') == ((), {})
    assert decode_arguments('{"args":[1],"kwargs":{"a":"b"}}') == (
        (1,),
        {"a": "b"},
    )
