-- 0110_store_functions: the store's atomic operations as database functions, so they are one call
-- into the database each, never a read-modify-write from the client: PostgresStore runs them with
-- `SELECT public.elfctl_x(a => ...)`, Supabase's REST API with `rpc('elfctl_x', {...})`. SQLite keeps
-- its SQL in the services (0110_store_functions.sqlite.sql is empty).
--
-- They mirror the Python they replace line for line (services/cost/budgets.py and ledger.py,
-- resilience/breaker.py, services/registry/entries.py, services/gateway/keys.py); what the Python
-- computes without the store (window starts of a reservation, expiry times, "now") comes in as an
-- argument. Times are the store's ISO-8601 UTC text, compared as text as everywhere else.
--
-- Security (Supabase): in schema public because PostgREST only calls functions in an exposed schema;
-- `security definer` so they run as the owner of the tables (row level security, enabled below on
-- every table with no policy, then binds nobody else); `set search_path = ''` so no object another
-- role creates can stand in for one of ours (every name inside is schema-qualified); execute is
-- revoked from PUBLIC, anon and authenticated (Supabase grants new functions to anon by default) and
-- granted to service_role, the key elfctl uses. Plain Postgres has none of those roles: the grants
-- are skipped there, and the tables' owner (elfctl's user) keeps execute as the functions' owner.

-- Take reservations back: the counters' reserved amounts of the given reservations, in key order
-- (every writer locks counters in that order, so concurrent writers never deadlock).
CREATE OR REPLACE FUNCTION public.elfctl_unreserve(p_gone jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT g.team, w.kind, w.start, SUM(g.amount) AS amount
          FROM jsonb_to_recordset(p_gone) AS g(team text, amount bigint, day_start text, month_start text)
         CROSS JOIN LATERAL (VALUES ('day', g.day_start), ('month', g.month_start)) AS w(kind, start)
         GROUP BY g.team, w.kind, w.start
         ORDER BY g.team COLLATE "C", w.kind COLLATE "C", w.start COLLATE "C"
    LOOP
        UPDATE public.spend_counters SET reserved_nanousd = reserved_nanousd - r.amount
         WHERE team = r.team AND window_kind = r.kind AND window_start = r.start;
    END LOOP;
END $$;

-- budgets.release / ledger.settle_in: delete the reservations still there (an expired one was
-- released already) and take their amounts off the counters. Returns how many were settled.
CREATE OR REPLACE FUNCTION public.elfctl_settle(p_ids text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_gone jsonb;
BEGIN
    WITH gone AS (
        DELETE FROM public.budget_reservations WHERE id = ANY (p_ids)
        RETURNING team, amount_nanousd AS amount, day_start, month_start
    )
    SELECT COALESCE(jsonb_agg(to_jsonb(gone)), '[]'::jsonb) INTO v_gone FROM gone;
    PERFORM public.elfctl_unreserve(v_gone);
    RETURN jsonb_array_length(v_gone);
END $$;

-- budgets.expire_in: release reservations past their expiry (their process died), of one team or
-- all (p_team NULL). Returns how many.
CREATE OR REPLACE FUNCTION public.elfctl_expire(p_now text, p_team text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_gone jsonb;
BEGIN
    WITH gone AS (
        DELETE FROM public.budget_reservations
         WHERE expires_at < p_now AND (p_team IS NULL OR team = p_team)
        RETURNING team, amount_nanousd AS amount, day_start, month_start
    )
    SELECT COALESCE(jsonb_agg(to_jsonb(gone)), '[]'::jsonb) INTO v_gone FROM gone;
    PERFORM public.elfctl_unreserve(v_gone);
    RETURN jsonb_array_length(v_gone);
END $$;

-- budgets.reserve: add p_amount to the day's and the month's counter if it fits under each limit
-- (always with p_force), and record the reservation; all or nothing. The conditional UPDATE is
-- re-checked by Postgres after it takes the row lock, so concurrent callers can never together
-- reserve past a limit. When a window is full, the team's expired reservations are released and it
-- is tried once more (as the Python did). Returns
--   {"ok": true, "expired": n, "windows": {"day": {"spent", "reserved"}, "month": {...}}}
--   {"ok": false, "expired": n, "window": "day"|"month", "start", "spent", "reserved"}
CREATE OR REPLACE FUNCTION public.elfctl_reserve(
    p_id text, p_team text, p_amount bigint, p_day text, p_month text, p_day_limit bigint,
    p_month_limit bigint, p_force boolean, p_now text, p_expires_at text
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_try integer;
    v_expired integer := 0;
    v_kind text;
    v_start text;
    v_limit bigint;
    v_spent bigint;
    v_reserved bigint;
    v_windows jsonb;
    v_refused jsonb;
BEGIN
    FOR v_try IN 1..2 LOOP
        BEGIN  -- a block: a full month rolls the day's reservation back with it
            v_windows := '{}'::jsonb;
            FOREACH v_kind IN ARRAY ARRAY['day', 'month'] LOOP
                v_start := CASE v_kind WHEN 'day' THEN p_day ELSE p_month END;
                v_limit := CASE v_kind WHEN 'day' THEN p_day_limit ELSE p_month_limit END;
                UPDATE public.spend_counters SET reserved_nanousd = reserved_nanousd + p_amount
                 WHERE team = p_team AND window_kind = v_kind AND window_start = v_start
                   AND (p_force OR v_limit IS NULL OR spent_nanousd + reserved_nanousd + p_amount <= v_limit)
                RETURNING spent_nanousd, reserved_nanousd INTO v_spent, v_reserved;
                IF NOT FOUND THEN
                    SELECT spent_nanousd, reserved_nanousd INTO v_spent, v_reserved FROM public.spend_counters
                     WHERE team = p_team AND window_kind = v_kind AND window_start = v_start;
                    IF FOUND THEN  -- the condition failed: this window is full
                        v_refused := jsonb_build_object('window', v_kind, 'start', v_start, 'spent', v_spent,
                                                        'reserved', v_reserved);
                        RAISE EXCEPTION USING ERRCODE = 'EL001';
                    END IF;
                    -- First call of a new window: create its counter (a concurrent creator is fine).
                    INSERT INTO public.spend_counters (team, window_kind, window_start) VALUES (p_team, v_kind, v_start)
                        ON CONFLICT (team, window_kind, window_start) DO NOTHING;
                    UPDATE public.spend_counters SET reserved_nanousd = reserved_nanousd + p_amount
                     WHERE team = p_team AND window_kind = v_kind AND window_start = v_start
                       AND (p_force OR v_limit IS NULL OR spent_nanousd + reserved_nanousd + p_amount <= v_limit)
                    RETURNING spent_nanousd, reserved_nanousd INTO v_spent, v_reserved;
                    IF NOT FOUND THEN
                        v_refused := jsonb_build_object('window', v_kind, 'start', v_start, 'spent', 0,
                                                        'reserved', 0);
                        RAISE EXCEPTION USING ERRCODE = 'EL001';
                    END IF;
                END IF;
                v_windows := v_windows || jsonb_build_object(
                    v_kind, jsonb_build_object('spent', v_spent, 'reserved', v_reserved));
            END LOOP;
            INSERT INTO public.budget_reservations (id, team, amount_nanousd, day_start, month_start, created_at,
                                                    expires_at)
                VALUES (p_id, p_team, p_amount, p_day, p_month, p_now, p_expires_at);
            RETURN jsonb_build_object('ok', true, 'expired', v_expired, 'windows', v_windows);
        EXCEPTION WHEN SQLSTATE 'EL001' THEN
            NULL;  -- refused; v_refused says where (variables survive the block's rollback)
        END;
        EXIT WHEN v_try = 2;
        v_expired := public.elfctl_expire(p_now, p_team);
        EXIT WHEN v_expired = 0;
    END LOOP;
    RETURN jsonb_build_object('ok', false, 'expired', v_expired) || v_refused;
END $$;

-- ledger.record_in: insert usage rows idempotently by request id, add only the new ones to
-- daily_cost_summary and the spend counters, and settle the reservations the rows name, in one
-- transaction. p_rows: a JSON array of api_usage rows (ledger.py's columns, plus reservation_id).
-- The counters' windows are in the team's time zone (budgets.timezone, read here in the same
-- transaction as the Python did): Postgres and Python's zoneinfo read the same IANA database, and
-- tests/supabase/test_store_functions.py pins the two to each other across DST changes.
-- Returns how many rows were new.
CREATE OR REPLACE FUNCTION public.elfctl_record_usage(p_rows jsonb, p_import_id text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_fresh jsonb;
    v_ids text[];
BEGIN
    WITH src AS (
        -- a batch naming one request twice counts it once (the first)
        SELECT DISTINCT ON (u.request_id) u.*
          FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(row, n)
         CROSS JOIN LATERAL jsonb_populate_record(NULL::public.api_usage, e.row) AS u
         ORDER BY u.request_id, e.n
    ), ins AS (
        INSERT INTO public.api_usage (request_id, ts, day, team, agent, requested_model, model, provider,
                                      prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
                                      reasoning_tokens, cost_nanousd, priced, price_version, latency_ms, outcome,
                                      fallback_reason, source, prompt_hash, revision, import_id)
        SELECT request_id, ts, day, team, agent, requested_model, model, provider,
               COALESCE(prompt_tokens, 0), COALESCE(completion_tokens, 0), COALESCE(cached_tokens, 0),
               COALESCE(cache_write_tokens, 0), COALESCE(reasoning_tokens, 0), COALESCE(cost_nanousd, 0),
               COALESCE(priced, 1), price_version, latency_ms, COALESCE(outcome, 'ok'), fallback_reason,
               COALESCE(source, 'elfctl'), prompt_hash, revision, p_import_id
          FROM src ORDER BY request_id COLLATE "C"
        ON CONFLICT (request_id) DO NOTHING
        RETURNING ts, day, team, model, outcome, fallback_reason, priced, prompt_tokens, completion_tokens,
                  cached_tokens, cost_nanousd
    )
    SELECT COALESCE(jsonb_agg(to_jsonb(ins)), '[]'::jsonb) INTO v_fresh FROM ins;

    -- Every writer locks summary rows, then counters, each in key order (a reservation: day, then
    -- month), so concurrent batches never deadlock.
    INSERT INTO public.daily_cost_summary (day, team, model, calls, errors, fallbacks, unpriced, prompt_tokens,
                                           completion_tokens, cached_tokens, cost_nanousd)
    SELECT f.day, f.team, f.model, COUNT(*), COUNT(*) FILTER (WHERE f.outcome <> 'ok'),
           COUNT(*) FILTER (WHERE COALESCE(f.fallback_reason, '') <> ''), COUNT(*) FILTER (WHERE f.priced = 0),
           SUM(f.prompt_tokens), SUM(f.completion_tokens), SUM(f.cached_tokens), SUM(f.cost_nanousd)
      FROM jsonb_to_recordset(v_fresh) AS f(day text, team text, model text, outcome text, fallback_reason text,
                                            priced integer, prompt_tokens bigint, completion_tokens bigint,
                                            cached_tokens bigint, cost_nanousd bigint)
     GROUP BY f.day, f.team, f.model
     ORDER BY f.day COLLATE "C", f.team COLLATE "C", f.model COLLATE "C"
    ON CONFLICT (day, team, model) DO UPDATE SET
        calls = public.daily_cost_summary.calls + excluded.calls,
        errors = public.daily_cost_summary.errors + excluded.errors,
        fallbacks = public.daily_cost_summary.fallbacks + excluded.fallbacks,
        unpriced = public.daily_cost_summary.unpriced + excluded.unpriced,
        prompt_tokens = public.daily_cost_summary.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = public.daily_cost_summary.completion_tokens + excluded.completion_tokens,
        cached_tokens = public.daily_cost_summary.cached_tokens + excluded.cached_tokens,
        cost_nanousd = public.daily_cost_summary.cost_nanousd + excluded.cost_nanousd;

    INSERT INTO public.spend_counters (team, window_kind, window_start, spent_nanousd)
    SELECT f.team, w.kind, w.start, SUM(f.cost_nanousd)
      FROM jsonb_to_recordset(v_fresh) AS f(ts text, team text, cost_nanousd bigint)
      LEFT JOIN public.budgets b ON b.team = f.team
     CROSS JOIN LATERAL (SELECT f.ts::timestamptz AT TIME ZONE COALESCE(b.timezone, 'UTC') AS t) AS l
     CROSS JOIN LATERAL (VALUES ('day', to_char(l.t, 'YYYY-MM-DD')),
                                ('month', to_char(date_trunc('month', l.t), 'YYYY-MM-DD'))) AS w(kind, start)
     WHERE f.cost_nanousd <> 0
     GROUP BY f.team, w.kind, w.start
     ORDER BY f.team COLLATE "C", w.kind COLLATE "C", w.start COLLATE "C"
    ON CONFLICT (team, window_kind, window_start) DO UPDATE SET
        spent_nanousd = public.spend_counters.spent_nanousd + excluded.spent_nanousd;

    SELECT array_agg(DISTINCT e->>'reservation_id') INTO v_ids FROM jsonb_array_elements(p_rows) AS e
     WHERE COALESCE(e->>'reservation_id', '') <> '';
    IF v_ids IS NOT NULL THEN
        PERFORM public.elfctl_settle(v_ids);
    END IF;
    RETURN jsonb_array_length(v_fresh);
END $$;

-- resilience/breaker.py: make sure the circuit's row exists; record the settings its users declared.
CREATE OR REPLACE FUNCTION public.elfctl_breaker_ensure(p_name text, p_at text, p_fail_max integer DEFAULT NULL,
                                                       p_reset_timeout_s double precision DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO public.breaker_state (name, state, updated_at) VALUES (p_name, 'closed', p_at)
        ON CONFLICT (name) DO NOTHING;
    IF p_fail_max IS NOT NULL THEN
        UPDATE public.breaker_state SET fail_max = p_fail_max, reset_timeout_s = p_reset_timeout_s
         WHERE name = p_name AND (fail_max IS NULL OR fail_max <> p_fail_max OR reset_timeout_s IS NULL
                                  OR reset_timeout_s <> p_reset_timeout_s::real);  -- the column's type
    END IF;
END $$;

-- One breaker transition (pybreaker's storage operations), as one atomic UPDATE:
-- 'state' / 'opened_at' set p_value; 'fail+1', 'success+1' count; 'fail=0' (only when not 0),
-- 'success=0' reset. Returns the rows changed (0 or 1).
CREATE OR REPLACE FUNCTION public.elfctl_breaker_update(p_name text, p_op text, p_at text,
                                                       p_value text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_n integer;
BEGIN
    CASE p_op
        WHEN 'state' THEN
            UPDATE public.breaker_state SET state = p_value, updated_at = p_at WHERE name = p_name;
        WHEN 'opened_at' THEN
            UPDATE public.breaker_state SET opened_at = p_value, updated_at = p_at WHERE name = p_name;
        WHEN 'fail+1' THEN
            UPDATE public.breaker_state SET fail_counter = fail_counter + 1, updated_at = p_at WHERE name = p_name;
        WHEN 'fail=0' THEN
            UPDATE public.breaker_state SET fail_counter = 0, updated_at = p_at WHERE name = p_name AND fail_counter <> 0;
        WHEN 'success+1' THEN
            UPDATE public.breaker_state SET success_counter = success_counter + 1, updated_at = p_at
             WHERE name = p_name;
        WHEN 'success=0' THEN
            UPDATE public.breaker_state SET success_counter = 0, updated_at = p_at WHERE name = p_name;
        ELSE
            RAISE EXCEPTION 'elfctl_breaker_update: unknown operation %', p_op USING ERRCODE = '22023';
    END CASE;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;

-- The half-open probe slot, compare-and-swap: the circuit becomes half-open with the caller's probe
-- in flight (until p_probe_until) if it is open since p_opened_before or earlier, or half-open with
-- an expired (or unknown) probe. True when the caller won the slot.
CREATE OR REPLACE FUNCTION public.elfctl_breaker_take_probe(p_name text, p_probe_until text, p_at text,
                                                           p_opened_before text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE public.breaker_state SET state = 'half-open', probe_until = p_probe_until, success_counter = 0,
                                    updated_at = p_at
     WHERE name = p_name AND held IS NULL AND (
           (state = 'open' AND (opened_at IS NULL OR opened_at <= p_opened_before)) OR
           (state = 'half-open' AND (probe_until IS NULL OR probe_until <= p_at)));
    RETURN FOUND;
END $$;

-- registry heartbeat: set the entry's check status, note and time. Returns the entry as it was
-- before (its last_status tells whether the status changed), or NULL when there is no such entry.
CREATE OR REPLACE FUNCTION public.elfctl_heartbeat(p_name text, p_status text, p_note text, p_at text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_before jsonb;
BEGIN
    SELECT to_jsonb(e) INTO v_before FROM public.registry_entries e WHERE e.name = p_name FOR UPDATE;
    IF v_before IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE public.registry_entries SET check_status = p_status, note = p_note, heartbeat_at = p_at,
                                       last_status = p_status
     WHERE name = p_name;
    RETURN v_before;
END $$;

-- The gateway's key lookup by prefix: the key's row with its hash (the caller compares the hash in
-- constant time), or NULL. The table itself stays unreadable to anon and authenticated.
CREATE OR REPLACE FUNCTION public.elfctl_key_lookup(p_prefix text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT to_jsonb(k) FROM public.gateway_keys k WHERE k.prefix = p_prefix
$$;

-- A key's last use, written at most once a minute per key and gateway process.
CREATE OR REPLACE FUNCTION public.elfctl_key_touch(p_prefix text, p_at text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $$
    UPDATE public.gateway_keys SET last_used_at = p_at WHERE prefix = p_prefix
$$;

-- Execute: nobody but service_role (and the owner). Row level security: on, on every elfctl table.
DO $$
DECLARE
    f record;
    t record;
    v_roles text;
BEGIN
    SELECT string_agg(quote_ident(rolname), ', ') INTO v_roles FROM pg_roles
     WHERE rolname IN ('anon', 'authenticated');
    FOR f IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'elfctl\_%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f.sig);
        IF v_roles IS NOT NULL THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', f.sig, v_roles);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f.sig);
        END IF;
    END LOOP;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t.tablename);
    END LOOP;
END $$;
