"""Whom a DICOM attribute belongs to: the role of each person-bearing attribute and sequence, and
which attributes describe the same person.

The nearest enclosing attribute that names a role decides it (as for XML elements in
``kanta_guard.roles``): PatientName is the patient's; an item of
ReferringPhysicianIdentificationSequence is the referring physician's, whatever it holds. Sources:
PS3.3 (Patient, General Study, General Series, General Equipment, SR Document General modules;
Person Identification Macro, Table 10-1), PS3.6 keywords.
"""

from __future__ import annotations

from types import MappingProxyType

from ..model import Role

__all__ = ["FREE_TEXT_VRS", "PERSON_GROUPS", "ROLES"]

_PATIENT = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientTelecomInformation",
    "PatientComments",
    "PatientInstitutionResidence",
    "ReferencedPatientSequence",
    "ReferencedPatientAliasSequence",
    "ReferencedPatientPhotoSequence",
    "MedicalRecordLocator",
    "MilitaryRank",
    "BranchOfService",
    "CountryOfResidence",
    "RegionOfResidence",
    "EthnicGroup",
    "Occupation",
    "PatientReligiousPreference",
    "PatientInsurancePlanCodeSequence",
)
_PROFESSIONAL = (
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence",
    "ConsultingPhysicianName",
    "ConsultingPhysicianIdentificationSequence",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "RequestingPhysicianIdentificationSequence",
    "ScheduledPerformingPhysicianName",
    "ScheduledPerformingPhysicianIdentificationSequence",
    "PhysicianApprovingInterpretation",
    "InterpretationApproverSequence",
    "InterpretationRecorder",
    "InterpretationTranscriber",
    "InterpretationAuthor",
    "ReviewerName",
    "VerifyingObserverName",
    "VerifyingObserverSequence",
    "VerifyingObserverIdentificationCodeSequence",
    "AuthorObserverSequence",
    "HumanPerformerName",
    "ActualHumanPerformersSequence",
    "ScheduledHumanPerformersSequence",
    "ContentCreatorName",
    "ContentCreatorIdentificationCodeSequence",
    "OrderEnteredBy",
    "ROICreatorSequence",
    "ROIInterpreterSequence",
    "ROIInterpreter",
    "SecondaryReviewerName",
    "EvaluatorName",
    "CurrentObserverTrial",
    "IntendedRecipientsOfResultsIdentificationSequence",
    "NamesOfIntendedRecipientsOfResults",
)
_ORGANISATION = (
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "InstitutionalDepartmentTypeCodeSequence",
    "CustodialOrganizationSequence",
    "ResponsibleOrganization",
    "StationName",
    "Manufacturer",
    "ManufacturerModelName",
    "OrderEntererLocation",
    "RetrieveAETitle",
    "StationAETitle",
    "SourceApplicationEntityTitle",
)

#: The role each keyword names (for itself and, for a sequence, for everything in its items).
ROLES = MappingProxyType(
    {
        **dict.fromkeys(_PATIENT, Role.PATIENT),
        **dict.fromkeys(_PROFESSIONAL, Role.PROFESSIONAL),
        **dict.fromkeys(_ORGANISATION, Role.ORGANISATION),
        "PatientMotherBirthName": Role.RELATED_PERSON,
        "ResponsiblePerson": Role.GUARDIAN,
        "ResponsiblePersonRole": Role.GUARDIAN,
        "ParticipantSequence": Role.PARTICIPANT,
        "PersonName": Role.PARTICIPANT,  # (0040,A123): an SR PNAME content item's value
        "TextValue": Role.NARRATIVE,  # (0040,A160): an SR TEXT content item's value
    }
)

#: Free-text VRs: their values are narrative where the enclosing role is the document's.
FREE_TEXT_VRS = frozenset({"LT", "ST", "UT"})


#: Attributes describing one person of a data set, by the person's group: what a party gathers.
#: (name, identifiers, addresses, phones, other telecoms) keywords per group.
PERSON_GROUPS = MappingProxyType(
    {
        "patient": (
            ("PatientName", "OtherPatientNames", "PatientBirthName"),
            ("PatientID", "OtherPatientIDs"),
            ("PatientAddress",),
            ("PatientTelephoneNumbers",),
            ("PatientTelecomInformation",),
        ),
        "referring": (
            ("ReferringPhysicianName",),
            (),
            ("ReferringPhysicianAddress",),
            ("ReferringPhysicianTelephoneNumbers",),
            (),
        ),
        # The Person Identification Macro (PS3.3 Table 10-1) inside an item.
        "person": (
            ("PersonName",),
            (),
            ("PersonAddress",),
            ("PersonTelephoneNumbers",),
            ("PersonTelecomInformation",),
        ),
    }
)
