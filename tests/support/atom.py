"""The Atom format's RELAX NG schema (RFC 4287, Appendix B: atom.rnc here), for lxml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import rnc2rng
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"


@cache
def atom_schema() -> etree.RelaxNG:
    grammar = rnc2rng.dumps(rnc2rng.loads((Path(__file__).parent / "atom.rnc").read_text()))
    # The grammar's `local` namespace is the empty one: declaring a prefix for it is not XML.
    grammar = grammar.replace('xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(grammar.encode()))


def valid_atom(document: bytes) -> etree._Element:
    """The parsed document; AssertionError naming the first schema violation."""
    root = etree.fromstring(document)
    schema = atom_schema()
    assert schema.validate(root), schema.error_log.last_error
    return root
