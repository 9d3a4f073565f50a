"""Simulators of the partners we call: carriers, banks, the face provider, the ID registry.

They behave like real partners (latency, jitter, failures answered UNAVAILABLE before any
effect, idempotency keys) and remember what they received so tests can assert on it. State
lives in memory: they are test doubles of outside systems, not services of ours.

    services/partners/
      directory.py      routing every service uses: which carrier, which bank, where; clients
      bootstrap.py      build(name): one simulator, or "partners" (all of them in one process)
      fleet.py          the "partners" component: starts every simulator on its own port
      simulator.py      one simulator as a Component: its state, gate, record and servicers
      domain/           pure rules and in-memory state, no grpc or protobuf
        routing.py      carrier prefixes, card BINs, payment providers, partner names
        cards.py        card types, the BIN table, Luhn check digits
        resident_id.py  GB 11643 ID numbers: format, check character, masking
        names.py        name comparison form and masking
        payee.py        confirmation of payee: MATCH / CLOSE_MATCH / NO_MATCH
        behavior.py     latency, jitter, failure rates and their draws
        received.py     the record of received calls (ListReceived)
        idempotency.py  first responses by idempotency key
        synthetic.py    deterministic default data when nothing is seeded
        carrier.py bank.py face.py registry.py   each partner's state and rules
      entrypoints/      gRPC servicers: validate, pass the gate, call the domain, convert
"""
