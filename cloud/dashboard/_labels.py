"""Words for the domain's closed vocabularies (severities, states, failure modes, kinds),
translated at render time. A value the table does not know is shown as written, with its
underscores as spaces, so a new value is never hidden."""

from __future__ import annotations

from collections.abc import Mapping

from cloud.dashboard.i18n import N_
from cloud.dashboard.i18n import gettext as _
from cloud.domain.catalogue import default_catalogue

__all__ = ["TERMS", "term"]

TERMS: Mapping[str, str] = {
    # severities
    "advisory": N_("advisory"),
    "warning": N_("warning"),
    "alarm": N_("alarm"),
    "critical": N_("critical"),
    # alert and work-order states, alert history events
    "open": N_("open"),
    "opened": N_("opened"),
    "evidence": N_("evidence"),
    "escalated": N_("escalated"),
    "acknowledged": N_("acknowledged"),
    "resolved": N_("resolved"),
    "cleared": N_("cleared"),
    "assigned": N_("assigned"),
    "in_progress": N_("in progress"),
    "done": N_("done"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
    "rated": N_("rated"),
    # failure modes (cloud/domain/failure_modes.toml)
    "bearing_outer_race": N_("bearing outer race"),
    "bearing_inner_race": N_("bearing inner race"),
    "bearing_ball": N_("bearing ball"),
    "bearing_cage": N_("bearing cage"),
    "imbalance": N_("imbalance"),
    "misalignment": N_("misalignment"),
    "looseness": N_("looseness"),
    "excessive_vibration": N_("excessive vibration"),
    "overheating": N_("overheating"),
    "unexplained": N_("unexplained"),
    "unknown_anomaly": N_("unknown anomaly"),
    "scheduled_service": N_("scheduled service"),
    "customer_report": N_("customer report"),
    # spectra of a diagnosis finding
    "spectrum": N_("spectrum"),
    "envelope": N_("envelope"),
    "waveform_snapshot": N_("waveform snapshot"),
    # asset kinds, foundations, customer tiers, roles
    "motor": N_("motor"),
    "pump": N_("pump"),
    "fan": N_("fan"),
    "spindle": N_("spindle"),
    "gearbox": N_("gearbox"),
    "rigid": N_("rigid"),
    "flexible": N_("flexible"),
    "strategic": N_("strategic"),
    "key": N_("key"),
    "standard": N_("standard"),
    "engineer": N_("engineer"),
    "service_desk": N_("service desk"),
    "admin": N_("admin"),
    "viewer": N_("viewer"),
    "customer": N_("customer"),
}


def term(value: object) -> str:
    """The page language's word for a vocabulary value ('bearing_outer_race' -> '轴承外圈')."""
    if value is None:
        return "–"
    text = str(value)
    known = TERMS.get(text)
    if known is None and text.lower() in (catalogue := default_catalogue()):
        # a model's alias of a catalogue failure mode ('unbalance', 'bpfo'): the mode's word
        known = TERMS.get(catalogue.lookup(text).id)
    return _(known) if known is not None else text.replace("_", " ")
