"""The inbox's search index: every word of every stored message, findable in any script.

Partners write one name several ways: ``ТЕСТОВИЋ`` in Serbian Cyrillic, ``TESTOVIĆ`` in Latin,
``TESTOVIC`` without diacritics, a phone number with or without spaces. Each word of a
message's text is indexed in one folded form: Cyrillic (Serbian, Macedonian, Russian)
transliterated to Latin, diacritics removed, lower case; a run of digits with separators
(a phone number, an account) is also indexed as its digits alone. A query is folded the same
way, so any spelling finds the others.

The index lives in the inbox database beside the message. Storing a message only notes it as
pending (``search_pending``): the words are indexed later, when the adapter is idle or, at
the latest, by the search that needs them, so that indexing (about as much CPU as receiving
the message) never slows delivery. It holds no word in the clear: each is a keyed hash
(HMAC-SHA256 under the inbox's own index key, kept in the same database as the messages'
keys), and a message's entries are deleted when it is shredded, so nothing of an expired
message is left to match.
"""

# ruff: noqa: RUF001 - the transliteration table is made of Cyrillic letters on purpose

from __future__ import annotations

import hmac
import json
import re
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any, Final

from broker import errors

__all__ = ["PENDING_SCHEMA", "SCHEMA", "TERMS_SCHEMA", "SearchIndex", "fold", "terms_of"]

#: the index itself (inbox schema version 5)
TERMS_SCHEMA: Final = (
    """CREATE TABLE search_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key BLOB NOT NULL
    )""",
    """CREATE TABLE search_terms (
        term BLOB NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (term, message_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX search_terms_message ON search_terms (message_id)",
)
#: the messages stored and not indexed yet (inbox schema version 6)
PENDING_SCHEMA: Final = ("CREATE TABLE search_pending (message_id TEXT PRIMARY KEY) WITHOUT ROWID",)
SCHEMA: Final = (*TERMS_SCHEMA, *PENDING_SCHEMA)
#: the most words indexed of one message: a message is at most about 1 MiB
_MAX_TERMS = 20_000
_MAX_QUERY_TERMS = 32
_KEY_BYTES = 32

# Serbian and Macedonian Cyrillic as their official Latin alphabets write them; the Russian
# letters they lack as common romanisations. Applied before diacritics are folded, so
# "ћ" and "ć" both end as "c".
_CYRILLIC: Final = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž",
        "з": "z", "и": "i", "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n",
        "њ": "nj", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "ћ": "ć", "у": "u",
        "ф": "f", "х": "h", "ц": "c", "ч": "č", "џ": "dž", "ш": "š", "ѓ": "ǵ", "ќ": "ḱ",
        "ѕ": "dz", "й": "j", "ы": "y", "э": "e", "ю": "ju", "я": "ja", "ё": "e", "щ": "šč",
        "ъ": "", "ь": "",
    }
)  # fmt: skip
# letters that Unicode does not decompose into a base letter and a mark
_UNDECOMPOSED: Final = str.maketrans({"đ": "dj", "ł": "l", "ø": "o", "ı": "i", "ß": "ss"})
_WORD: Final = re.compile(r"\w+")
_NUMBER: Final = re.compile(r"\+?\d[\d\s().\-/]{4,}\d")


def fold(text: str) -> str:
    """``text`` as the index keeps it: Latin, no diacritics, lower case."""
    if text.isascii():
        return text.lower()  # no Cyrillic, nothing to decompose: most of what is indexed
    lowered = text.lower().translate(_CYRILLIC).translate(_UNDECOMPOSED)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms_of(text: str) -> set[str]:
    """The folded words of ``text``, and each number's digits run together."""
    terms = {word for word in _WORD.findall(fold(text)) if len(word) > 1 or word.isdigit()}
    for number in _NUMBER.findall(text):
        terms.add(re.sub(r"\D", "", number))
    return terms


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class SearchIndex:
    """The ``search_terms`` of one inbox database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._key: bytes | None = None

    def note_in_transaction(self, message_id: str) -> None:
        """Note a message just stored as waiting to be indexed."""
        self._conn.execute("INSERT OR IGNORE INTO search_pending VALUES (?)", (message_id,))

    def pending(self, limit: int | None) -> list[str]:
        """Messages waiting to be indexed, at most ``limit`` (all with None), oldest id first."""
        rows = self._conn.execute(
            "SELECT message_id FROM search_pending ORDER BY message_id LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [row[0] for row in rows]

    def add_in_transaction(self, message_id: str, plaintext: bytes) -> None:
        """Index the words of a message's JSON text (its values, not its field names), and
        take it off the pending list; the caller holds a transaction."""
        try:
            # a message verified and validated before it is stored: no stricter parse needed
            document: Any = json.loads(plaintext)
        except ValueError:
            # never the case for a message the adapter stores; indexing must not fail a store
            document = plaintext.decode("utf-8", errors="replace")
        terms: set[str] = set()
        for text in _strings(document):
            terms |= terms_of(text)
            if len(terms) > _MAX_TERMS:
                break
        key = self._writing_key()
        # in the index's own order: each insert lands next to the one before it
        hashed = sorted(_hashed(key, term) for term in sorted(terms)[:_MAX_TERMS])
        self._conn.executemany(
            "INSERT OR IGNORE INTO search_terms VALUES (?, ?)",
            ((term, message_id) for term in hashed),
        )
        self._conn.execute("DELETE FROM search_pending WHERE message_id = ?", (message_id,))

    def forget_in_transaction(self, message_ids: Iterable[str]) -> None:
        """Remove every entry of these messages (when they are shredded), indexed or not."""
        ids = [(m,) for m in message_ids]
        self._conn.executemany("DELETE FROM search_terms WHERE message_id = ?", ids)
        self._conn.executemany("DELETE FROM search_pending WHERE message_id = ?", ids)

    def matching(self, query: str) -> set[str] | None:
        """The ids of messages holding every word of ``query``; None when it has no word."""
        terms = sorted(terms_of(query))
        if not terms:
            return None
        if len(terms) > _MAX_QUERY_TERMS:
            raise errors.UsageError(f"a search has at most {_MAX_QUERY_TERMS} words")
        key = self._stored_key()
        if key is None:
            return set()  # nothing was ever indexed
        found: set[str] | None = None
        for term in terms:
            rows = self._conn.execute(
                "SELECT message_id FROM search_terms WHERE term = ?", (_hashed(key, term),)
            )
            ids = {row[0] for row in rows}
            found = ids if found is None else found & ids
            if not found:
                return set()
        return found

    def _stored_key(self) -> bytes | None:
        if self._key is None:
            row = self._conn.execute("SELECT key FROM search_key WHERE id = 1").fetchone()
            self._key = None if row is None else bytes(row[0])
        return self._key

    def _writing_key(self) -> bytes:
        key = self._stored_key()
        if key is None:
            # first use, inside the transaction that stores the first message
            # (not cached: the transaction may yet roll back; this connection reads it again)
            key = secrets.token_bytes(_KEY_BYTES)
            self._conn.execute("INSERT INTO search_key VALUES (1, ?)", (key,))
        return key


def _hashed(key: bytes, term: str) -> bytes:
    return hmac.digest(key, term.encode("utf-8"), "sha256")
