-- 0140_export_functions: the ledger's row export (`cost report --by request`) as a paged database
-- function, the queue_request strategy's queue (services/resilience/queue.py: enqueue, claim,
-- finish or drop), `cost budget set` and the registry's sweep as functions, so they run over
-- Supabase's REST API (`rpc`).
-- PostgresStore calls the same functions; SQLite keeps the SQL in the services
-- (0140_export_functions.sqlite.sql is empty). Security as in 0110.

-- The export walks the ledger in its order (ts, id) a page at a time, each page starting after the
-- last row of the one before (keyset): no OFFSET, so a page costs the same at row 1,000,000 as at
-- row 0, and rows with equal timestamps are neither repeated nor skipped at a page boundary.
CREATE INDEX IF NOT EXISTS api_usage_ts_id ON public.api_usage (ts, id);

-- One page of `cost report --by request` (report.report): api_usage rows (every column, id included:
-- the next page's cursor) with day in [p_since, p_until] of team p_team (NULL: no filter), after
-- (p_after_ts, p_after_id) (NULL: from the start), at most p_limit (clamped to 1..1000) in (ts, id)
-- order. Returns {"rows": [...], "more": whether rows follow}: one value, not a set, so PostgREST's
-- max-rows never cuts a page short, and `more` (one row read past the page) ends the walk, never a
-- short page. json, not jsonb: building a page as jsonb costs about 3 times as much.
CREATE OR REPLACE FUNCTION public.elfctl_usage_rows(p_team text DEFAULT NULL, p_since text DEFAULT NULL,
                                                   p_until text DEFAULT NULL, p_after_ts text DEFAULT NULL,
                                                   p_after_id bigint DEFAULT NULL, p_limit integer DEFAULT 1000)
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_limit integer := LEAST(GREATEST(COALESCE(p_limit, 1000), 1), 1000);
    v_rows json;
    v_n integer;
BEGIN
    SELECT COALESCE(json_agg(u ORDER BY u.ts, u.id) FILTER (WHERE u.page_row <= v_limit), '[]'::json), COUNT(*)
      INTO v_rows, v_n
      FROM (SELECT a.*, row_number() OVER (ORDER BY a.ts, a.id) AS page_row FROM public.api_usage a
             WHERE (p_team IS NULL OR a.team = p_team) AND (p_since IS NULL OR a.day >= p_since)
               AND (p_until IS NULL OR a.day <= p_until)
               -- always this one comparison ('' sorts before every timestamp), never an OR: the plan
               -- walks api_usage_ts_id from the cursor, generic plan or not
               AND (a.ts, a.id) > (COALESCE(p_after_ts, ''), COALESCE(p_after_id, -1))
             ORDER BY a.ts, a.id
             LIMIT v_limit + 1) u;  -- the row past the page only says that more follow
    RETURN json_build_object('rows', v_rows, 'more', v_n > v_limit);
END $$;

-- queue.enqueue: the bound checked and counted, the call's row and its trail row (p_action, p_event
-- as elfctl_record_action takes them) written, in one call. Returns false, writing nothing, when
-- p_row's resource holds p_limit rows already (concurrent enqueuers never pass it: the counter's
-- conditional UPDATE serialises them).
CREATE OR REPLACE FUNCTION public.elfctl_queue_put(p_row jsonb, p_limit integer, p_action jsonb, p_event jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_resource text := p_row ->> 'resource';
BEGIN
    INSERT INTO public.resilience_queue_bounds (resource, queued) VALUES (v_resource, 0)
        ON CONFLICT (resource) DO NOTHING;
    UPDATE public.resilience_queue_bounds SET queued = queued + 1 WHERE resource = v_resource AND queued < p_limit;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO public.resilience_queue (id, resource, team, target, payload, enqueued_at, expires_at)
    SELECT q.id, q.resource, q.team, q.target, q.payload, q.enqueued_at, q.expires_at
      FROM jsonb_populate_record(NULL::public.resilience_queue, p_row) AS q;
    PERFORM public.elfctl_record_action(p_action, p_event);
    RETURN true;
END $$;

-- queue._claim: take one row for a run (attempts counted, claimed until p_until) unless another
-- drainer holds it, it failed p_max times, or it is gone. Returns the row to run, or NULL. One
-- UPDATE: two drainers never both claim it.
CREATE OR REPLACE FUNCTION public.elfctl_queue_claim(p_id text, p_now text, p_until text, p_max integer)
RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $$
    UPDATE public.resilience_queue SET claimed_until = p_until, attempts = attempts + 1
     WHERE id = p_id AND attempts < p_max AND (claimed_until IS NULL OR claimed_until <= p_now)
    RETURNING jsonb_build_object('id', id, 'resource', resource, 'team', team, 'target', target,
                                 'payload', payload, 'expires_at', expires_at)
$$;

-- queue.drain's end of a run and queue.drop, for a list of rows in one transaction: each item
-- {"id", "error", "action", "event"}: without error the row is removed (its resource's counter
-- follows), with one it is released with that error. The item's trail row is written when its row
-- was there, or always with p_always (a drain ran the call even if the row was dropped meanwhile).
-- Returns the ids whose row was there.
CREATE OR REPLACE FUNCTION public.elfctl_queue_done(p_items jsonb, p_always boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    it record;
    v_resource text;
    v_found text[] := '{}';
BEGIN
    FOR it IN SELECT * FROM jsonb_to_recordset(p_items) AS i(id text, error text, action jsonb, event jsonb) LOOP
        v_resource := NULL;
        IF it.error IS NULL THEN
            DELETE FROM public.resilience_queue WHERE id = it.id RETURNING resource INTO v_resource;
            IF v_resource IS NOT NULL THEN
                UPDATE public.resilience_queue_bounds SET queued = queued - 1 WHERE resource = v_resource;
            END IF;
        ELSE
            UPDATE public.resilience_queue SET claimed_until = NULL, last_error = it.error WHERE id = it.id
            RETURNING resource INTO v_resource;
        END IF;
        IF v_resource IS NOT NULL THEN
            v_found := v_found || it.id;
        END IF;
        IF v_resource IS NOT NULL OR p_always THEN
            PERFORM public.elfctl_record_action(it.action, it.event);
        END IF;
    END LOOP;
    RETURN to_jsonb(v_found);
END $$;

-- budgets.set_budget (`elfctl cost budget set`): the team's budget row, and its current counters rebuilt
-- from the ledger (the time zone decides the windows), in one call. p_windows: [{kind, start, lo,
-- hi}] per window as budgets.window_bounds computes them: the counter's key and [lo, hi) of ts.
CREATE OR REPLACE FUNCTION public.elfctl_budget_set(p_budget jsonb, p_windows jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    b public.budgets;
    w record;
BEGIN
    b := jsonb_populate_record(NULL::public.budgets, p_budget);
    INSERT INTO public.budgets (team, daily_nanousd, monthly_nanousd, soft_ratio, soft_action, hard_action, timezone,
                                updated_at)
    VALUES (b.team, b.daily_nanousd, b.monthly_nanousd, b.soft_ratio, b.soft_action, b.hard_action, b.timezone,
            b.updated_at)
    ON CONFLICT (team) DO UPDATE SET daily_nanousd = excluded.daily_nanousd,
        monthly_nanousd = excluded.monthly_nanousd, soft_ratio = excluded.soft_ratio,
        soft_action = excluded.soft_action, hard_action = excluded.hard_action, timezone = excluded.timezone,
        updated_at = excluded.updated_at;
    FOR w IN SELECT * FROM jsonb_to_recordset(p_windows) AS x(kind text, start text, lo text, hi text)
              ORDER BY x.kind COLLATE "C" LOOP  -- counters in key order, as every writer locks them
        INSERT INTO public.spend_counters (team, window_kind, window_start, spent_nanousd, reserved_nanousd)
        VALUES (b.team, w.kind, w.start,
                (SELECT COALESCE(SUM(u.cost_nanousd), 0) FROM public.api_usage u
                  WHERE u.team = b.team AND u.ts >= w.lo AND u.ts < w.hi),
                (SELECT COALESCE(SUM(r.amount_nanousd), 0) FROM public.budget_reservations r
                  WHERE r.team = b.team AND CASE w.kind WHEN 'day' THEN r.day_start ELSE r.month_start END = w.start))
        ON CONFLICT (team, window_kind, window_start) DO UPDATE SET spent_nanousd = excluded.spent_nanousd,
            reserved_nanousd = excluded.reserved_nanousd;
    END LOOP;
END $$;

-- registry.sweep (services/registry/entries.py; `elfctl health`, `registry graph`): one entry's change
-- the sweep decided from what it read, with its trail row (p_action, p_event as elfctl_record_action
-- takes them): p_status NULL deregisters it (the entry and its capabilities), else last_status :=
-- p_status. Applied only while the entry is as read (last_status, heartbeat_at): a heartbeat or
-- another sweep in between wins, and nothing is written. Returns whether it was applied.
CREATE OR REPLACE FUNCTION public.elfctl_registry_sweep(p_name text, p_seen_status text, p_seen_heartbeat text,
                                                       p_status text, p_action jsonb, p_event jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF p_status IS NULL THEN
        DELETE FROM public.registry_entries
         WHERE name = p_name AND last_status = p_seen_status AND heartbeat_at = p_seen_heartbeat;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        DELETE FROM public.registry_capabilities WHERE name = p_name;
    ELSE
        UPDATE public.registry_entries SET last_status = p_status
         WHERE name = p_name AND last_status = p_seen_status AND heartbeat_at = p_seen_heartbeat;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    PERFORM public.elfctl_record_action(p_action, p_event);
    RETURN true;
END $$;

-- Execute: nobody but service_role (and the owner), as 0110 does for its functions.
DO $$
DECLARE
    f record;
    v_roles text;
BEGIN
    SELECT string_agg(quote_ident(rolname), ', ') INTO v_roles FROM pg_roles
     WHERE rolname IN ('anon', 'authenticated');
    FOR f IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ('elfctl_usage_rows', 'elfctl_queue_put',
                                                                       'elfctl_queue_claim', 'elfctl_queue_done',
                                                                       'elfctl_budget_set', 'elfctl_registry_sweep')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f.sig);
        IF v_roles IS NOT NULL THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', f.sig, v_roles);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f.sig);
        END IF;
    END LOOP;
END $$;
