"""The demonstration set of partner agencies (synthetic contact addresses)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.common import LocalAuthority
from schemas.events.agencies import AgencyKind

ALL_AREAS = (
    LocalAuthority.HULL,
    LocalAuthority.EAST_RIDING,
    LocalAuthority.NORTH_LINCOLNSHIRE,
    LocalAuthority.NORTH_EAST_LINCOLNSHIRE,
)


@dataclass(frozen=True)
class DemoAgency:
    agency_id: str
    name: str
    kind: AgencyKind
    areas: tuple[LocalAuthority, ...]

    @property
    def contact_email(self) -> str:
        return f"{self.agency_id}@agencies.example.org"


DEMO_AGENCIES = (
    DemoAgency("mappa-humberside", "Humberside MAPPA Unit", AgencyKind.MAPPA, ALL_AREAS),
    DemoAgency("hmp-hull", "HMP Hull", AgencyKind.PRISON, ()),
    DemoAgency(
        "probation-hull-east-riding",
        "Probation Service, Hull and East Riding PDU",
        AgencyKind.PROBATION,
        (LocalAuthority.HULL, LocalAuthority.EAST_RIDING),
    ),
    DemoAgency(
        "probation-north-ne-lincs",
        "Probation Service, North and North East Lincolnshire PDU",
        AgencyKind.PROBATION,
        (LocalAuthority.NORTH_LINCOLNSHIRE, LocalAuthority.NORTH_EAST_LINCOLNSHIRE),
    ),
    DemoAgency("police-mosovo", "Humberside Police MOSOVO", AgencyKind.POLICE, ALL_AREAS),
    DemoAgency(
        "safeguarding-hull",
        "Hull Safeguarding Adults Partnership Board",
        AgencyKind.SAFEGUARDING_BOARD,
        (LocalAuthority.HULL,),
    ),
    DemoAgency(
        "safeguarding-east-riding",
        "East Riding Safeguarding Adults Board",
        AgencyKind.SAFEGUARDING_BOARD,
        (LocalAuthority.EAST_RIDING,),
    ),
    DemoAgency(
        "safeguarding-north-lincs",
        "North Lincolnshire Safeguarding Adults Board",
        AgencyKind.SAFEGUARDING_BOARD,
        (LocalAuthority.NORTH_LINCOLNSHIRE,),
    ),
    DemoAgency(
        "safeguarding-ne-lincs",
        "North East Lincolnshire Safeguarding Adults Board",
        AgencyKind.SAFEGUARDING_BOARD,
        (LocalAuthority.NORTH_EAST_LINCOLNSHIRE,),
    ),
)
