"""Handover and intersection analysis (issue 5): serving-cell changes, interruptions,
ping-pong and failover, tagged by intersection zone. Fed by the same Fleet state as the link
statistics; nothing is implemented here yet."""
