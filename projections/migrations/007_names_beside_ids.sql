-- Natural input (issue 16): a committee or an owner team may be given by its name; events carry
-- the derived id and the name as given (CommitteeUpdateRecorded and OwnerAssigned, schema
-- version 2). The committee's name is kept beside its updates, for papers and reports.
ALTER TABLE committee_updates ADD COLUMN committee_name text;

-- event_log keeps each event's data upcast to its current version. Rows projected at version 1
-- get what the upcasters give (events/registry.py: the name was not recorded), so the live
-- tables and a replay from offset 0 agree, checksum for checksum.
UPDATE event_log SET data = data || '{"committee_name": null}'::jsonb
WHERE type = 'CommitteeUpdateRecorded' AND NOT data ? 'committee_name';
UPDATE event_log SET data = data || '{"team_name": null}'::jsonb
WHERE type = 'OwnerAssigned' AND NOT data ? 'team_name';
