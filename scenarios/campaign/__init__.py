"""Campaigns: many drive logs or scenarios replayed in parallel, merged as one serial run.

A campaign is the same ``l4mon replay`` of each input, run by local worker processes
(``engines.LocalEngine``) or a Dask cluster (``engines.DaskEngine``), with each input's
results written exactly as a serial run writes them and a summary over all of them
(docs/campaigns.md).
"""

from scenarios.campaign.engines import (
    DaskEngine,
    Engine,
    LocalEngine,
    SerialEngine,
    engine_for,
    ordered,
)
from scenarios.campaign.inputs import CampaignError, Entry, expand
from scenarios.campaign.job import Replayed, ReplaySettings, replay_entry
from scenarios.campaign.run import Campaign, run_campaign
from scenarios.campaign.summary import SUMMARY_FORMAT, campaign_document, digest

__all__ = ["SUMMARY_FORMAT", "Campaign", "CampaignError", "DaskEngine", "Engine", "Entry",
           "LocalEngine", "ReplaySettings", "Replayed", "SerialEngine", "campaign_document",
           "digest", "engine_for", "expand", "ordered", "replay_entry", "run_campaign"]
