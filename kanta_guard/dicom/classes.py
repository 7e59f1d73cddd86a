"""Which image types carry burned-in text: where Burned In Annotation must be stated, where OCR
reads by default, and where text in the pixels is unexpected.

PS3.4 Annex B names the storage SOP classes; PS3.3 says Burned In Annotation (0028,0301) is
required (Type 1) of secondary capture and conditional or optional elsewhere. From practice (and
the IHE and TCIA de-identification guidance): secondary captures (screenshots, scanned documents,
digitised film), ultrasound, X-ray angiography and fluoroscopy, and visible-light photographs
and endoscopy carry text in their pixels often; CT, MR, PET, NM, CR/DX/MG acquisitions seldom.
"""

from __future__ import annotations

__all__ = ["burned_in_prone", "text_expected"]

#: Secondary capture: single-frame, multi-frame single bit, grayscale byte/word, true colour.
_SECONDARY_CAPTURE = ("1.2.840.10008.5.1.4.1.1.7",)
#: Ultrasound image and multi-frame (and their retired forms), enhanced US volume.
_ULTRASOUND = (
    "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.5.1.4.1.1.6.2",
    "1.2.840.10008.5.1.4.1.1.6.3",
    "1.2.840.10008.5.1.4.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.6",
    "1.2.840.10008.5.1.4.1.1.3",
)
#: X-ray angiography and radiofluoroscopy (and enhanced), visible light (endoscopy,
#: microscopy, photography, ophthalmic photography), video.
_TEXT_LIKELY = (
    "1.2.840.10008.5.1.4.1.1.12.",
    "1.2.840.10008.5.1.4.1.1.77.1.",
)
#: Modalities (0008,0060) of the same kinds.
_PRONE_MODALITIES = frozenset({"US", "IVUS", "DOC", "OT"})
_LIKELY_MODALITIES = frozenset({"XA", "RF", "ES", "XC", "GM", "SM", "OP", "OPT", "DMS", "TG"})
#: Conversion Type (0008,0064) of secondary captures: scanned document, digitised film,
#: scanned image, workstation (a screenshot), drawing, synthetic image.
_CONVERSIONS = frozenset({"SD", "DF", "SI", "WSD", "DRW", "SYN", "DI", "DV"})


def _matches(sop_class: str, prefixes: tuple[str, ...]) -> bool:
    return any(sop_class == p or sop_class.startswith(p + ".") for p in prefixes)


def burned_in_prone(sop_class: str, modality: str, conversion_type: str) -> bool:
    """True for the image types where burned-in text is common: secondary capture (screenshots,
    scanned documents, digitised film), ultrasound. On these a missing Burned In Annotation is
    a finding."""
    return (
        _matches(sop_class, _SECONDARY_CAPTURE)
        or _matches(sop_class, _ULTRASOUND)
        or modality in _PRONE_MODALITIES
        or conversion_type in _CONVERSIONS
    )


def text_expected(sop_class: str, modality: str, conversion_type: str) -> bool:
    """True where text in the pixels is plausible (OCR reads these by default, and text found is
    not unexpected): the burned-in-prone types, and angiography, fluoroscopy, visible light."""
    if burned_in_prone(sop_class, modality, conversion_type):
        return True
    return any(sop_class.startswith(p) for p in _TEXT_LIKELY) or modality in _LIKELY_MODALITIES
