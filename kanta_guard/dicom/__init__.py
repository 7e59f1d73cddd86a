"""DICOM content: reading data sets strictly (:mod:`.read`), the confidentiality profile's
attributes (:mod:`.profile`, PS3.15 Annex E), the policy's ``[dicom]`` settings
(:mod:`.settings`), roles and names of attributes, image types, and the facts the DICOM parser
hands the DICOM detector (:mod:`.facts`).

The parser is :class:`kanta_guard.parsers.dicom.DicomParser`, the detector
:class:`kanta_guard.detectors.dicom.DicomDetector`.
"""

from __future__ import annotations

from .profile import Option, Profile, ProfileEntry, load_profile
from .read import DicomObject, ReadLimits, read, to_pydicom
from .settings import DicomSettings, OcrMode, SafePrivate

__all__ = [
    "DicomObject",
    "DicomSettings",
    "OcrMode",
    "Option",
    "Profile",
    "ProfileEntry",
    "ReadLimits",
    "SafePrivate",
    "load_profile",
    "read",
    "to_pydicom",
]
