"""The province simulator (``chiso simulate``): realistic dossier, survey and task traffic for the real
communes of one province, sent through the services' own inbound interfaces as outside systems would.

- :mod:`services.simulator.traffic` — what happens (pure, seeded, no I/O): the dossiers of every commune,
  their facts in lifecycle order, SIPAS responses about delivered dossiers, each commune's annual plan and
  its tasks, as a stream ordered by simulated time;
- :mod:`services.simulator.answers` — answers to an instrument document (the surveys service's
  ``GET /v1/instruments/{id}/versions/{version}`` body, or an instrument YAML file);
- :mod:`services.simulator.links` — QR/SMS link tokens signed with the documented partner recipe;
- :mod:`services.simulator.send` — where it goes: the dossiers inbound topic (CloudEvents binary mode) or
  ``POST /v1/facts``, the surveys inbound topic or ``POST /v1/responses`` with link tokens, the plans HTTP
  API, or a JSON-lines file (dry run); paced to a rate in events per second;
- :mod:`services.simulator.cli` — the ``chiso simulate`` command.

The simulator imports no other service (import-linter): only ``contracts``, ``eventkit`` and libraries.
"""
