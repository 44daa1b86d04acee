-- Approvals (runbook.approval): a run's request for four eyes, bound to the
-- digest of what it would run, and the votes on it (who, as the operating
-- system knows them, and an SSH signature's verified principal). Rows mirror
-- the journal's events, as the others do.

CREATE TABLE approvals (
    id text PRIMARY KEY,
    run_id text NOT NULL,
    playbook text NOT NULL,
    target text,
    digest text NOT NULL,
    quorum integer NOT NULL,
    approvers text,
    forbid_self integer NOT NULL,
    requested_by text NOT NULL,
    requested_os_user text NOT NULL,
    requested_at text NOT NULL,
    status text NOT NULL,
    decided_at text,
    reason text
);
CREATE INDEX approvals_of ON approvals (run_id);
CREATE INDEX approvals_status ON approvals (status);
CREATE TABLE approval_votes (
    id text PRIMARY KEY,
    approval_id text NOT NULL,
    by text NOT NULL,
    at text NOT NULL,
    decision text NOT NULL,
    comment text,
    principal text,
    signature text
);
CREATE INDEX approval_votes_of ON approval_votes (approval_id);
