"""DICOM upper-layer bytes for the DIMSE tests, made by pynetdicom's own encoders.

What the guard reads is checked against what a real implementation writes: associations,
messages (command sets and data sets, fragmented as pynetdicom fragments them) and data sets
built with pydicom. Test data sets carry 900-series codes; a real-range one is passed in.
"""

from __future__ import annotations

from io import BytesIO

from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import generate_uid
from pynetdicom import dimse_messages, dimse_primitives, pdu, pdu_primitives
from pynetdicom.presentation import PresentationContext

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

#: The contexts most tests propose: (id, abstract syntax, transfer syntaxes).
CONTEXTS = (
    (1, SECONDARY_CAPTURE, (IMPLICIT, EXPLICIT)),
    (3, VERIFICATION, (IMPLICIT,)),
    (5, STUDY_ROOT_FIND, (IMPLICIT,)),
    (7, STUDY_ROOT_MOVE, (IMPLICIT,)),
    (9, STORAGE_COMMITMENT, (IMPLICIT,)),
    (11, CT_IMAGE, (EXPLICIT,)),
)
#: What the server accepts of them: id → transfer syntax.
ACCEPTED = {1: IMPLICIT, 3: IMPLICIT, 5: IMPLICIT, 7: IMPLICIT, 9: IMPLICIT, 11: EXPLICIT}


def _user(max_length: int, version: str = "", identity: bytes = b"") -> list[object]:
    length = pdu_primitives.MaximumLengthNotification()
    length.maximum_length_received = max_length
    uid = pdu_primitives.ImplementationClassUIDNotification()
    uid.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0"
    items: list[object] = [length, uid]
    if version:
        name = pdu_primitives.ImplementationVersionNameNotification()
        name.implementation_version_name = version
        items.append(name)
    if identity:
        user = pdu_primitives.UserIdentityNegotiation()
        user.user_identity_type = 1  # a user name
        user.positive_response_requested = False
        user.primary_field = identity
        items.append(user)
    return items


def associate_rq(
    contexts: tuple[tuple[int, str, tuple[str, ...]], ...] = CONTEXTS,
    max_length: int = 16382,
    calling: str = "TEST-SCU",
    called: str = "TEST-SCP",
    version: str = "",
    identity: bytes = b"",
) -> bytes:
    """An A-ASSOCIATE-RQ as pynetdicom encodes it (``identity``: a User Identity sub-item,
    type 1, with this user name)."""
    primitive = pdu_primitives.A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    proposed = []
    for context_id, abstract, syntaxes in contexts:
        context = PresentationContext()
        context.context_id = context_id
        context.abstract_syntax = abstract
        context.transfer_syntax = list(syntaxes)
        proposed.append(context)
    primitive.presentation_context_definition_list = proposed
    primitive.user_information = _user(max_length, version, identity)  # type: ignore[assignment]
    encoder = pdu.A_ASSOCIATE_RQ()
    encoder.from_primitive(primitive)
    return bytes(encoder.encode())


def associate_ac(
    accepted: dict[int, str] | None = None,
    rejected: tuple[int, ...] = (),
    max_length: int = 16382,
) -> bytes:
    """An A-ASSOCIATE-AC as pynetdicom encodes it: ``accepted`` id → transfer syntax, and the
    ``rejected`` ids (abstract syntax not supported)."""
    primitive = pdu_primitives.A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = "TEST-SCU"
    primitive.called_ae_title = "TEST-SCP"
    primitive.result = 0
    results = []
    for context_id, syntax in (accepted if accepted is not None else ACCEPTED).items():
        context = PresentationContext()
        context.context_id = context_id
        context.transfer_syntax = [syntax]
        context.result = 0
        results.append(context)
    for context_id in rejected:
        context = PresentationContext()
        context.context_id = context_id
        context.transfer_syntax = [IMPLICIT]
        context.result = 3
        results.append(context)
    primitive.presentation_context_definition_results_list = results
    primitive.user_information = _user(max_length)  # type: ignore[assignment]
    encoder = pdu.A_ASSOCIATE_AC()
    encoder.from_primitive(primitive)
    return bytes(encoder.encode())


def associate_rj(result: int = 1, source: int = 1, reason: int = 1) -> bytes:
    primitive = pdu_primitives.A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = reason
    encoder = pdu.A_ASSOCIATE_RJ()
    encoder.from_primitive(primitive)
    return bytes(encoder.encode())


def release_rq() -> bytes:
    return bytes(pdu.A_RELEASE_RQ().encode())


def release_rp() -> bytes:
    return bytes(pdu.A_RELEASE_RP().encode())


def abort(source: int = 0, reason: int = 0) -> bytes:
    primitive = pdu_primitives.A_ABORT()
    primitive.abort_source = source
    encoder = pdu.A_ABORT_RQ()
    encoder.from_primitive(primitive)
    encoder.reason_diagnostic = reason
    return bytes(encoder.encode())


def encode_message(
    message: dimse_messages.DIMSEMessage, context_id: int, max_pdu: int
) -> list[bytes]:
    """The P-DATA-TF PDUs of one DIMSE message, fragmented as pynetdicom sends it."""
    pdus = []
    for primitive in message.encode_msg(context_id, max_pdu):
        encoder = pdu.P_DATA_TF()
        encoder.from_primitive(primitive)
        pdus.append(bytes(encoder.encode()))
    return pdus


def c_store(
    data: bytes,
    message_id: int = 1,
    context_id: int = 1,
    max_pdu: int = 16382,
    sop_class: str = SECONDARY_CAPTURE,
    instance: str = "1.2.826.0.1.3680043.8.498.1",
) -> list[bytes]:
    """A C-STORE-RQ of the data set ``data`` (already encoded), as PDUs."""
    primitive = dimse_primitives.C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = sop_class
    primitive.AffectedSOPInstanceUID = instance
    primitive.Priority = 0
    primitive.DataSet = BytesIO(data)
    message = dimse_messages.C_STORE_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, max_pdu)


def c_echo(message_id: int = 2, context_id: int = 3) -> list[bytes]:
    primitive = dimse_primitives.C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = VERIFICATION
    message = dimse_messages.C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def c_echo_rsp(message_id: int = 2, context_id: int = 3) -> list[bytes]:
    primitive = dimse_primitives.C_ECHO()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = VERIFICATION
    primitive.Status = 0
    message = dimse_messages.C_ECHO_RSP()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def c_store_rsp(message_id: int = 1, context_id: int = 1, status: int = 0) -> list[bytes]:
    primitive = dimse_primitives.C_STORE()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = SECONDARY_CAPTURE
    primitive.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    primitive.Status = status
    message = dimse_messages.C_STORE_RSP()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def c_find(identifier: bytes, message_id: int = 3, context_id: int = 5) -> list[bytes]:
    primitive = dimse_primitives.C_FIND()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
    primitive.Priority = 0
    primitive.Identifier = BytesIO(identifier)
    message = dimse_messages.C_FIND_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def c_find_rsp(
    identifier: bytes | None, message_id: int = 3, context_id: int = 5, status: int = 0xFF00
) -> list[bytes]:
    primitive = dimse_primitives.C_FIND()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
    primitive.Status = status
    if identifier is not None:
        primitive.Identifier = BytesIO(identifier)
    message = dimse_messages.C_FIND_RSP()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def c_move(identifier: bytes, message_id: int = 4, context_id: int = 7) -> list[bytes]:
    primitive = dimse_primitives.C_MOVE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = STUDY_ROOT_MOVE
    primitive.Priority = 0
    primitive.MoveDestination = "TEST-DEST"
    primitive.Identifier = BytesIO(identifier)
    message = dimse_messages.C_MOVE_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def n_action(information: bytes, message_id: int = 5, context_id: int = 9) -> list[bytes]:
    """A Storage Commitment N-ACTION-RQ (action type 1) with its action information."""
    primitive = dimse_primitives.N_ACTION()
    primitive.MessageID = message_id
    primitive.RequestedSOPClassUID = STORAGE_COMMITMENT
    primitive.RequestedSOPInstanceUID = STORAGE_COMMITMENT_INSTANCE
    primitive.ActionTypeID = 1
    primitive.ActionInformation = BytesIO(information)
    message = dimse_messages.N_ACTION_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, 16382)


def dataset(patient_id: str = "020516C903K", *, implicit: bool = True, pixels: int = 0) -> bytes:
    """An encoded secondary capture data set (no file meta), with ``pixels``×``pixels`` 8-bit
    pixel data when asked: de-identified as the imaging rules want (a dummy name, the test code,
    Patient Identity Removed YES with a method, Burned In Annotation NO)."""
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "ANONYMIZED"
    ds.PatientID = patient_id
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "PS3.15 Basic Application Level Confidentiality Profile"
    ds.BurnedInAnnotation = "NO"
    ds.Modality = "OT"
    if pixels:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = pixels
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(range(256)) * (pixels * pixels // 256) + bytes(pixels * pixels % 256)
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    write_dataset(out, ds)
    return bytes(out.getvalue())


def identifier(patient_id: str = "020516C903K", level: str = "STUDY") -> bytes:
    """A C-FIND/C-MOVE identifier (Implicit VR Little Endian)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.PatientID = patient_id
    ds.StudyInstanceUID = ""
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = True
    write_dataset(out, ds)
    return bytes(out.getvalue())


def commitment_request(instances: int = 2) -> bytes:
    """Storage Commitment action information: a transaction and the instances to commit."""
    ds = Dataset()
    ds.TransactionUID = generate_uid()
    items = []
    for _ in range(instances):
        item = Dataset()
        item.ReferencedSOPClassUID = SECONDARY_CAPTURE
        item.ReferencedSOPInstanceUID = generate_uid()
        items.append(item)
    ds.ReferencedSOPSequence = items
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = True
    write_dataset(out, ds)
    return bytes(out.getvalue())
