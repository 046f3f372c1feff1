"""Commands with a closed loop: the operator acts, the vehicle answers, the journal keeps both
(docs/protocol.md, "Commands"; docs/console-api.md, "Commands")."""
