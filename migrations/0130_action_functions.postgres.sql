-- 0130_action_functions: the actions trail (services/actions/trail.py) and the alert outbox
-- (services/notify/outbox.py emit) and the trail's read as database functions, so automatic actions and alerts are
-- written over Supabase's REST API as well (one `rpc` each: REST has no transaction to put the two
-- inserts in). PostgresStore calls the same functions inside the caller's transaction. SQLite keeps
-- the SQL in the services (0130_action_functions.sqlite.sql is empty). Security as in 0110.

-- One action row and its outbox event, together: p_action is a platform_actions row (NULL: an
-- event alone, as outbox.emit sends), p_event a notify_events row (NULL: no event), stored unless an
-- event with its dedupe_key exists. Returns {"new": whether the event was stored}.
CREATE OR REPLACE FUNCTION public.elfctl_record_action(p_action jsonb, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_new boolean := false;
BEGIN
    IF p_action IS NOT NULL THEN
        INSERT INTO public.platform_actions (id, ts, resource, team, trigger, strategy, target, result, actor)
        SELECT a.id, a.ts, a.resource, a.team, a.trigger, a.strategy, a.target, a.result, a.actor
          FROM jsonb_populate_record(NULL::public.platform_actions, p_action) AS a;
    END IF;
    IF p_event IS NOT NULL THEN
        INSERT INTO public.notify_events (id, dedupe_key, ts, kind, severity, team, title, details)
        SELECT e.id, e.dedupe_key, e.ts, e.kind, e.severity, e.team, e.title, e.details
          FROM jsonb_populate_record(NULL::public.notify_events, p_event) AS e
        ON CONFLICT (dedupe_key) DO NOTHING;
        v_new := FOUND;
    END IF;
    RETURN jsonb_build_object('new', v_new);
END $$;

-- `elfctl breakers open|close` (services/resilience/breakers.py): the hand-made transition and its
-- trail row in one call. With p_held (who opened it): the circuit's row is made if missing, then open
-- and held; without: closed, counters zeroed, a hold released. elfctl_breaker_update (0110) does not
-- fit: it changes one column per call and never the hold. Returns {"breaker": the row after, "new":
-- whether the event was stored}, or NULL when closing a circuit that does not exist (nothing written).
CREATE OR REPLACE FUNCTION public.elfctl_breaker_hold(p_name text, p_held text, p_at text, p_action jsonb,
                                                     p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_done jsonb;
BEGIN
    IF p_held IS NOT NULL THEN
        INSERT INTO public.breaker_state (name, state, updated_at) VALUES (p_name, 'closed', p_at)
            ON CONFLICT (name) DO NOTHING;
        UPDATE public.breaker_state SET state = 'open', held = p_held, opened_at = p_at, probe_until = NULL,
                                        updated_at = p_at
         WHERE name = p_name;
    ELSE
        UPDATE public.breaker_state SET state = 'closed', held = NULL, fail_counter = 0, success_counter = 0,
                                        opened_at = NULL, probe_until = NULL, updated_at = p_at
         WHERE name = p_name;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    v_done := public.elfctl_record_action(p_action, p_event);
    RETURN jsonb_build_object('breaker', (SELECT to_jsonb(b) FROM public.breaker_state b WHERE b.name = p_name),
                              'new', v_done -> 'new');
END $$;

-- trail.recent (`elfctl audit actions`): the newest actions first, optionally since a time, of one
-- team, of one resource. A function because REST's filters elfctl uses are equality only.
CREATE OR REPLACE FUNCTION public.elfctl_recent_actions(p_since text, p_team text, p_resource text,
                                                       p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT COALESCE(jsonb_agg(to_jsonb(a) ORDER BY a.ts DESC, a.id DESC), '[]'::jsonb)
      FROM (SELECT * FROM public.platform_actions
             WHERE (p_since IS NULL OR ts >= p_since) AND (p_team IS NULL OR team = p_team)
               AND (p_resource IS NULL OR resource = p_resource)
             ORDER BY ts DESC, id DESC LIMIT p_limit) AS a
$$;

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
         WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ('elfctl_record_action', 'elfctl_breaker_hold',
                                                                       'elfctl_recent_actions')
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
