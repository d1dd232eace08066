"""The contract: event envelope, event data per aggregate, outcomes, topic names, serialisation."""
