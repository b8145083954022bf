"""Person ids: which samples show the same person, so that splits are made by person.

A source is named by its *key*: its path relative to the folder above the root it was found
in, POSIX style (``videos/mead_dreamtalk/M030_front_angry_level3_001.mp4``,
``images/dlib/examples/johns/John_Simm/John_Simm_0001.jpg``). :func:`person_of` maps a key to a
person id with these rules, the first that applies wins (patterns are :mod:`fnmatch` globs on
the key, case-insensitive, where ``*`` also crosses ``/``):

1. ``overrides``: the user's ``{pattern: person}`` mapping (``kaocap data build --people F``,
   a JSON object), tried in file order.
2. :data:`AMBIGUOUS`: photos showing several people who also appear elsewhere
   (``obama_and_biden.jpg``, ``two_people.jpg``, ``kit_with_rose.jpg``): without face
   recognition their faces cannot be told apart, so they are left out (``None``).
3. :data:`KNOWN_PEOPLE`: one person seen in several sources of ``../shared/data``, found by
   name and by eye on the people sheet of a full build: Obama (EDTalk, LIA, face_recognition),
   AOC (SadTalker, V-Express, EDTalk, VideoReTalking), Angelina Jolie, Einstein, Trump, RDJ
   and Beckham (PC-AVS clips and CodeFormer photos), ..., and LivePortrait driving clips that
   reuse one actor (``liveportrait:man_a`` = d1, d2, d5, d8, d18, d19). All pd_fgc panels are
   one id: panel 3 of ``test6`` looks like the expression driver of panel 4.
4. :data:`NAME_RULES`: datasets whose file names carry the subject: MEAD ``M030_...`` ->
   ``mead:M030`` (in mead_dreamtalk and mead_lrs3_spectre alike), HDTF ``WDA_KatieHill_000`` /
   ``RD_Radio34_000`` -> ``hdtf:WDA_KatieHill``, VoxCeleb ``id04657-...`` -> ``voxceleb:id04657``,
   LRS3 ``<11-char YouTube id>_00002`` -> ``lrs3:<id>``, LivePortrait clips ``d10.mp4`` /
   ``d10_old_history.mp4`` -> ``liveportrait:d10`` (its photos ``d12.jpg`` are other people),
   SimSwap crops by initials (``ljm2.jpg`` -> ``simswap:ljm``), PC-AVS 9-digit clip names by
   their first 3 digits.
5. Identity folders: a photo in ``<parent>/<name>/`` where ``<parent>`` is one of
   :data:`IDENTITY_PARENTS` (dlib ``johns``, face_recognition ``knn_examples/train``,
   facenet_pytorch ``test_images``) -> ``<name>`` lower-cased.
6. deepface's test photos ``img1.jpg`` ... ``img67.jpg``: 13 identities, the connected groups
   of the "same person" pairs deepface lists in ``tests/dataset/face-recognition-pivot.csv``
   (:data:`DEEPFACE_IDENTITIES`, named where also elsewhere); ``img11_reflection`` is ``img11``
   mirrored.
7. Otherwise one person per clip, per frame-sequence folder, or per photo: the key without its
   suffix (and without a ``#panel`` part).

When unsure, merge: a coarser id can only put more samples in one split, never one person in
two. The people sheet of the dataset card (``card/people.png``) shows one crop per id to review.
:data:`RULES_DIGEST` goes into every manifest: a dataset is never resumed under other rules.

>>> person_of("videos/mead_dreamtalk/M030_front_angry_level3_001.mp4")
'mead:M030'
>>> person_of("images/dlib/examples/johns/John_Simm/John_Simm_0001.jpg")
'john_simm'
>>> person_of("videos/lia_x/driving1.mp4")
'videos/lia_x/driving1'
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from kaocap.errors import ConfigError

#: Multi-person photos of people who appear elsewhere: left out (person None).
AMBIGUOUS: tuple[str, ...] = ("*obama_and_biden*", "*/face_recognition/examples/two_people.*",
                              "*kit_with_rose*")  # fmt: skip

#: person id -> key patterns: the same person across sources of ../shared/data, found by name
#: and by eye on the people sheet of a full build (LivePortrait's driving clips reuse a few actors;
#: "ted_lieu" pairs two clips that may or may not be one man: merged, as unsure).
KNOWN_PEOPLE: dict[str, tuple[str, ...]] = {
    "obama": ("*uncrop_obama*", "*/lia_vox/obama.*", "*/lia_x/driving4.*", "*/face_recognition/examples/obama*",
              "*/knn_examples/*/obama*"),
    "biden": ("*/face_recognition/examples/biden.*", "*/knn_examples/train/biden/*"),
    "alexandria_ocasio_cortez": ("*wda_alexandriaocasiocortez*", "*short_case_aoc*", "*/edtalk/pose_source1.*",
                                 "*/videoretalking/examples/face/3.*"),
    "ted_lieu": ("*/edtalk/pose_source2.*", "*/videoretalking/examples/face/1.*"),
    "alex_lacamoire": ("*alex-lacamoire*", "*alex_lacamoire*"),
    "kit_harington": ("*kit_harington*", "*johnsnow*"),
    "rose_leslie": ("*rose_leslie*",),
    "lin_manuel_miranda": ("*lin-manuel-miranda*", "*short_hamilton_clip*"),
    "angelina_jolie": ("*/test_images/angelina_jolie/*", "*/deepface/tests/integration/dataset/target.*",
                       "*/deepface/tests/unit/dataset/couple.*"),
    "elon_musk": ("*/liveportrait/*/driving/d12.jpg",),
    "matt_damon": ("*/crop_224/mtdm.*",),
    "leonardo_dicaprio": ("*/crop_224/6.jpg", "*/codeformer/inputs/whole_imgs/05.*", "*/codeformer/inputs/whole_imgs/06.*"),
    "audrey_hepburn": ("*hepburn*", "*/codeformer/inputs/whole_imgs/04.*"),
    "albert_einstein": ("*einstein*", "*/liveportrait/*/source/s12.jpg"),
    "donald_trump": ("*trump*", "*/liveportrait/*/driving/d38.jpg"),
    "tom_cruise": ("*tom_cruise*", "*/synergynet/img/sample_3.*"),
    "robert_downey_jr": ("*robert_downey*", "*/pc_avs/*/741400163.*", "*/pc_avs/*/00104.*"),
    "david_beckham": ("*david_beckham*", "*/pc_avs/input/00098.*"),
    "chow_yun_fat": ("*/crop_224/ds.jpg", "*/crop_224/zrf.jpg"),
    "liveportrait:man_a": tuple(f"*/liveportrait/*/driving/{n}.mp4" for n in
                                ("d1_history", "d2_history", "d5_history", "d8_history", "d18", "d19")),
    "liveportrait:man_b": tuple(f"*/liveportrait/*/driving/{n}.mp4" for n in ("d0", "d9", "d12", "d13")),
    "liveportrait:woman_a": ("*/liveportrait/*/driving/d7_history.mp4", "*/liveportrait/*/source/s18.mp4"),
    "pd_fgc": ("*/pd_fgc/*",),
}  # fmt: skip

#: (key pattern, regex on the file or folder stem, person template with the groups).
NAME_RULES: tuple[tuple[str, str, str], ...] = (
    ("*", r"^([MW]\d{3})_", "mead:{0}"),
    ("*", r"^((?:WDA|WRA|RD)_[A-Za-z]+\d*)_", "hdtf:{0}"),
    ("*", r"^(id\d{5})[-_]", "voxceleb:{0}"),
    ("*", r"^([A-Za-z0-9_-]{11})_\d{5}$", "lrs3:{0}"),
    ("*liveportrait*.mp4", r"^([ds]\d+)(?:_|$)", "liveportrait:{0}"),
    ("*simswap*", r"^([a-z]+)\d*$", "simswap:{0}"),
    ("*pc_avs*", r"^(\d{3})\d{6}$", "pc_avs:{0}"),
)

#: Folders whose sub-folders are named after the person in them.
IDENTITY_PARENTS: frozenset[str] = frozenset({"johns", "train", "test_images"})

#: deepface's test photos per identity (groups of its "same person" pairs); named where the
#: person is also in other sources.
DEEPFACE_IDENTITIES: dict[str, tuple[int, ...]] = {
    "angelina_jolie": (1, 2, 4, 5, 6, 7, 10, 11), "deepface:b": (3, 12, 53, 54, 55, 56),
    "deepface:c": (8, 9, 47, 48, 49, 50, 51), "deepface:d": (13, 14, 15, 57, 58),
    "deepface:e": (16, 17, 59, 61, 62), "elon_musk": (18, 19, 67), "deepface:g": (20, 21),
    "deepface:h": (22, 23, 63, 64, 65, 66), "deepface:i": (24, 25), "deepface:j": (26, 27, 28, 42, 43, 44, 45, 46),
    "matt_damon": (29, 30, 31, 32, 33), "leonardo_dicaprio": (34, 35, 36, 37), "deepface:m": (38, 39, 40, 41),
}  # fmt: skip
_DEEPFACE = {n: person for person, ns in DEEPFACE_IDENTITIES.items() for n in ns}
#: A digest of every rule table: recorded in manifests, since changing a rule moves people between splits.
RULES_DIGEST = hashlib.sha1(repr((AMBIGUOUS, KNOWN_PEOPLE, NAME_RULES, sorted(IDENTITY_PARENTS),
                                  DEEPFACE_IDENTITIES)).encode()).hexdigest()[:12]  # fmt: skip


def _match(key: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(key.lower(), pattern.lower())


def _stem(key: str) -> str:
    return PurePosixPath(key.split("#", 1)[0]).stem


def _by_name(key: str) -> str | None:
    stem = _stem(key)
    for pattern, regex, template in NAME_RULES:
        found = re.match(regex, stem)
        if found and _match(key, pattern):
            return template.format(*found.groups())
    return None


def _by_folder(key: str) -> str | None:
    parts = PurePosixPath(key.split("#", 1)[0]).parts
    if len(parts) >= 3 and parts[-3] in IDENTITY_PARENTS:
        return parts[-2].lower()
    if "deepface" in parts:
        found = re.match(r"^img(\d+)(?:_reflection)?$", _stem(key))
        if found and int(found.group(1)) in _DEEPFACE:
            return _DEEPFACE[int(found.group(1))]
    return None


def person_of(key: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The person id of a source key (rules in the module docstring); None = leave it out."""
    for pattern, person in (overrides or {}).items():
        if _match(key, pattern):
            return person
    if any(_match(key, p) for p in AMBIGUOUS):
        return None
    for person, patterns in KNOWN_PEOPLE.items():
        if any(_match(key, p) for p in patterns):
            return person
    found = _by_name(key) or _by_folder(key)
    if found:
        return found
    plain = PurePosixPath(key.split("#", 1)[0])
    return str(plain.with_suffix("")) if plain.suffix else str(plain)


def load_overrides(path: str | Path | None) -> dict[str, str]:
    """A ``{key pattern: person id}`` JSON object (``--people``); {} when ``path`` is None."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read the person mapping {path}: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise ConfigError(f"{path}: expected a JSON object of key pattern -> person id strings")
    return dict(data)
