"""Warning dispatch (antifraud.warning.v1.WarningService): every outbound intervention.

    domain/          model (enums, records), policy (tier policy), contacts (pair-day
                     counts, contact level rule), rules (once-per-window key, states), texts,
                     screening (verdict -> allow/label/warn/block, the callee's warning)
    adapters/        tables + migrations; one repository module per aggregate; partner
                     calls (carriers, banks via the partner directory); the risk change feed
                     and risk look-ups (risk_checks, for screening)
    service_layer/   warnings (create/dispatch/ack), fanout (12381 contact warnings),
                     follower (risk feed -> fan-outs), sms (outbox sender, poller,
                     receipts), bank_orders, tasks, notifications, push (app streams),
                     contacts (record, late contacts, retention), screening (decide and
                     record in one transaction, grouped by services/common/group_commit.py),
                     loops
    entrypoints/     grpc_servicer (thin) and convert (proto <-> domain)
    bootstrap.py     build(name) -> WarningComponent; settings.py: ANTIFRAUD_WARNING_*

Every delivery is a row written with its warning, and SMS deliveries and bank orders an
outbox event in the same transaction; the delivery id (order id) is the partner's
idempotency key, so a crash anywhere repeats a call, never its effect.
"""
