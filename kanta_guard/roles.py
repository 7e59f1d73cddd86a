"""Whom a field belongs to: the element and resource names that change the role, per standard.

The nearest enclosing element (or JSON key, or FHIR resource) that names a role decides it.
Sources: HL7 CDA R2 (participations of ClinicalDocument and entries), HL7 V3 message wrappers
(controlActProcess/subject), SAML 2.0, FHIR R4 resources and participant elements.
"""

from __future__ import annotations

from types import MappingProxyType

from .model import Role

__all__ = ["FHIR_KEY_ROLES", "FHIR_RESOURCE_ROLES", "XML_ROLES"]

#: Element local names (CDA R2, HL7 V3, SAML, SOAP) that set the role of everything inside them.
XML_ROLES = MappingProxyType(
    {
        # CDA R2 header participations
        "recordTarget": Role.PATIENT,
        "patientRole": Role.PATIENT,
        "patient": Role.PATIENT,
        "guardian": Role.GUARDIAN,
        "guardianPerson": Role.GUARDIAN,
        "author": Role.AUTHOR,
        "assignedAuthor": Role.AUTHOR,
        "informant": Role.INFORMANT,
        "dataEnterer": Role.DATA_ENTERER,
        "authenticator": Role.AUTHENTICATOR,
        "legalAuthenticator": Role.LEGAL_AUTHENTICATOR,
        "participant": Role.PARTICIPANT,
        "performer": Role.PROFESSIONAL,
        "assignedEntity": Role.PROFESSIONAL,
        "assignedPerson": Role.PROFESSIONAL,
        "relatedSubject": Role.RELATED_PERSON,
        "relatedEntity": Role.RELATED_PERSON,
        "relatedPerson": Role.RELATED_PERSON,
        "personalRelationship": Role.RELATED_PERSON,
        # organisations: their contact details are not personal data
        "custodian": Role.ORGANISATION,
        "representedOrganization": Role.ORGANISATION,
        "representedCustodianOrganization": Role.ORGANISATION,
        "serviceProviderOrganization": Role.ORGANISATION,
        "providerOrganization": Role.ORGANISATION,
        "scopingOrganization": Role.ORGANISATION,
        "wholeOrganization": Role.ORGANISATION,
        "receivedOrganization": Role.ORGANISATION,
        "informationRecipient": Role.ORGANISATION,
        "intendedRecipient": Role.ORGANISATION,
        "manufacturerOrganization": Role.ORGANISATION,
        "healthCareFacility": Role.ORGANISATION,
        "serviceDeliveryLocation": Role.ORGANISATION,
        # HL7 V3 message wrapper: sender/receiver devices, the controlAct's subject
        "sender": Role.MESSAGE,
        "receiver": Role.MESSAGE,
        "device": Role.MESSAGE,
        "subject": Role.SUBJECT,
        "authorOrPerformer": Role.AUTHOR,
        "patientPerson": Role.PATIENT,
        # SOAP header and SAML assertion: the user of the system under test
        "Header": Role.MESSAGE,
        "Assertion": Role.USER,
        "Signature": Role.MESSAGE,
    }
)

#: FHIR R4 resource types and the role of their content.
FHIR_RESOURCE_ROLES = MappingProxyType(
    {
        "Patient": Role.PATIENT,
        "RelatedPerson": Role.RELATED_PERSON,
        "Person": Role.RELATED_PERSON,
        "Practitioner": Role.PROFESSIONAL,
        "PractitionerRole": Role.PROFESSIONAL,
        "Organization": Role.ORGANISATION,
        "Location": Role.ORGANISATION,
        "HealthcareService": Role.ORGANISATION,
        "Endpoint": Role.ORGANISATION,
        "Device": Role.ORGANISATION,
    }
)

#: FHIR element names that change the role of what they hold (references, participants).
FHIR_KEY_ROLES = MappingProxyType(
    {
        "contact": Role.RELATED_PERSON,
        "participant": Role.PARTICIPANT,
        "patient": Role.PATIENT,
        "subject": Role.PATIENT,
        "beneficiary": Role.PATIENT,
        "performer": Role.PROFESSIONAL,
        "requester": Role.PROFESSIONAL,
        "recorder": Role.PROFESSIONAL,
        "asserter": Role.PROFESSIONAL,
        "practitioner": Role.PROFESSIONAL,
        "author": Role.AUTHOR,
        "attester": Role.AUTHENTICATOR,
        "managingOrganization": Role.ORGANISATION,
        "organization": Role.ORGANISATION,
        "serviceProvider": Role.ORGANISATION,
        "custodian": Role.ORGANISATION,
        "div": Role.NARRATIVE,
    }
)
