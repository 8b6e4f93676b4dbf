"""chiso's wire language: the only code the services share.

CloudEvents 1.0 envelopes (:mod:`contracts.envelope`, :mod:`contracts.wire`), topic names and the key
rule (:mod:`contracts.topics`), and one module of v1 payload models per producing service. Depends on
pydantic and the standard library only, so any Python system can install it to speak to chiso.
"""
