-- 0160_operator_functions: the operator's writes that still ran as SQL, as database functions, so they
-- run over Supabase's REST API (SUPABASE_URL/SUPABASE_KEY) too: `registry register / deregister /
-- import-card` (services/registry/entries.py), `gateway key create / revoke` (services/gateway/keys.py),
-- `notify list / retry` (services/notify/outbox.py). PostgresStore calls the same functions; SQLite
-- keeps the SQL in the services (0160_operator_functions.sqlite.sql is empty). Security as in 0110.

-- registry.register_many: entries (registry_entries rows as JSON, capabilities a JSON list in its text
-- column as stored, last_status computed by the caller, optional "action"/"event" as
-- elfctl_record_action takes them) registered all or none: each row inserted or replaced (keeping its
-- registered_at), its capabilities index rebuilt, its trail row written. The caller checks kinds and
-- depends_on loops first (for its messages); they are checked again here, under a lock, so two
-- registrations at once cannot make a loop or change an entry's kind (23514: the caller's input).
-- Returns {name: registered_at}.
CREATE OR REPLACE FUNCTION public.elfctl_registry_register(p_entries jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    it jsonb;
    e public.registry_entries;
    v_kind text;
    v_out jsonb := '{}';
    v_at text;
BEGIN
    -- registrations serialise: a loop needs two of them, each seeing the other's edge
    PERFORM pg_advisory_xact_lock(hashtext('elfctl_registry_register'));
    FOR it IN SELECT value FROM jsonb_array_elements(p_entries) LOOP
        e := jsonb_populate_record(NULL::public.registry_entries, it);
        SELECT r.kind INTO v_kind FROM public.registry_entries r WHERE r.name = e.name FOR UPDATE;
        IF v_kind IS NOT NULL AND v_kind <> e.kind THEN
            RAISE EXCEPTION USING ERRCODE = '23514',
                MESSAGE = format('name %L is registered already as a %s', e.name, v_kind);
        END IF;
        INSERT INTO public.registry_entries AS t (name, kind, url, endpoints, owner, lifecycle, capabilities, depends_on,
                                                 metadata, ttl_s, deregister_after_s, check_status, note, heartbeat_at,
                                                 registered_at, source, last_status)
        VALUES (e.name, e.kind, e.url, e.endpoints, e.owner, e.lifecycle, e.capabilities, e.depends_on, e.metadata,
                e.ttl_s, e.deregister_after_s, e.check_status, e.note, e.heartbeat_at, e.registered_at, e.source,
                e.last_status)
        ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, endpoints = excluded.endpoints,
            owner = excluded.owner, lifecycle = excluded.lifecycle, capabilities = excluded.capabilities,
            depends_on = excluded.depends_on, metadata = excluded.metadata, ttl_s = excluded.ttl_s,
            deregister_after_s = excluded.deregister_after_s, check_status = excluded.check_status,
            note = excluded.note, heartbeat_at = excluded.heartbeat_at, source = excluded.source,
            last_status = excluded.last_status
        RETURNING t.registered_at INTO v_at;
        DELETE FROM public.registry_capabilities WHERE name = e.name;
        INSERT INTO public.registry_capabilities (capability, name)
        SELECT DISTINCT c, e.name FROM jsonb_array_elements_text(e.capabilities::jsonb) c;
        IF e.depends_on <> '[]' AND EXISTS (
            WITH RECURSIVE reach(node) AS (
                SELECT d FROM jsonb_array_elements_text(e.depends_on::jsonb) d
                UNION
                SELECT d FROM reach JOIN public.registry_entries r ON r.name = reach.node
                              CROSS JOIN LATERAL jsonb_array_elements_text(r.depends_on::jsonb) d)
            SELECT 1 FROM reach WHERE node = e.name) THEN
            RAISE EXCEPTION USING ERRCODE = '23514',
                MESSAGE = format('entry %s: its depends_on makes a loop back to itself', e.name);
        END IF;
        IF it ? 'action' THEN
            PERFORM public.elfctl_record_action(it -> 'action', it -> 'event');
        END IF;
        v_out := v_out || jsonb_build_object(e.name, v_at);
    END LOOP;
    RETURN v_out;
END $$;

-- registry.deregister: the entry and its capabilities removed, with its trail row when p_action is
-- given. Returns the kind it had, or NULL (nothing removed, no trail row) when there was none.
CREATE OR REPLACE FUNCTION public.elfctl_registry_deregister(p_name text, p_action jsonb DEFAULT NULL,
                                                            p_event jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_kind text;
BEGIN
    DELETE FROM public.registry_entries WHERE name = p_name RETURNING kind INTO v_kind;
    IF v_kind IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM public.registry_capabilities WHERE name = p_name;
    IF p_action IS NOT NULL THEN
        PERFORM public.elfctl_record_action(p_action, p_event);
    END IF;
    RETURN v_kind;
END $$;

-- keys.mint (`gateway key create`, deploy's revision keys): a gateway_keys row (the key's sha256, never
-- the key). Returns false, writing nothing, when the prefix is taken (the caller draws another).
CREATE OR REPLACE FUNCTION public.elfctl_key_create(p_key jsonb) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO public.gateway_keys (prefix, hash, team, revision, created_at, expires_at)
    SELECT k.prefix, k.hash, k.team, k.revision, k.created_at, k.expires_at
      FROM jsonb_populate_record(NULL::public.gateway_keys, p_key) AS k
    ON CONFLICT (prefix) DO NOTHING;
    RETURN FOUND;
END $$;

-- keys.revoke (`gateway key revoke`): whether a live key of that prefix was revoked now.
CREATE OR REPLACE FUNCTION public.elfctl_key_revoke(p_prefix text, p_at text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    UPDATE public.gateway_keys SET revoked_at = p_at WHERE prefix = p_prefix AND revoked_at IS NULL;
    RETURN FOUND;
END $$;

-- outbox.listing (`notify list`): the newest p_limit events (with p_failed_only, those with a failed
-- delivery), newest first, each notify_events row with "deliveries": its delivery rows. Read only.
CREATE OR REPLACE FUNCTION public.elfctl_notify_events(p_failed_only boolean, p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT COALESCE(jsonb_agg(to_jsonb(v) || jsonb_build_object('deliveries', COALESCE((
               SELECT jsonb_agg(jsonb_build_object('channel', d.channel, 'state', d.state, 'attempts', d.attempts,
                                                   'next_at', d.next_at, 'last_error', d.last_error)
                                ORDER BY d.channel)
                 FROM public.notify_deliveries d WHERE d.event_id = v.id), '[]'::jsonb))
           ORDER BY v.ts DESC, v.id DESC), '[]'::jsonb)
      FROM (SELECT e.* FROM public.notify_events e
             WHERE NOT p_failed_only OR EXISTS (SELECT 1 FROM public.notify_deliveries f
                                                 WHERE f.event_id = e.id AND f.state = 'failed')
             ORDER BY e.ts DESC, e.id DESC LIMIT GREATEST(p_limit, 0)) v
$$;

-- outbox.retry (`notify retry`): failed deliveries (all, or those of p_event_ids) back to pending with
-- their attempts reset; with p_enable the channels a receiver disabled (410) enabled again, in the same
-- transaction. Returns how many deliveries.
CREATE OR REPLACE FUNCTION public.elfctl_notify_retry(p_event_ids text[] DEFAULT NULL, p_enable boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_n integer;
BEGIN
    IF p_enable THEN
        DELETE FROM public.notify_channels;
    END IF;
    UPDATE public.notify_deliveries SET state = 'pending', attempts = 0, next_at = NULL
     WHERE state = 'failed' AND (p_event_ids IS NULL OR cardinality(p_event_ids) = 0 OR event_id = ANY (p_event_ids));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
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
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proname IN ('elfctl_registry_register', 'elfctl_registry_deregister', 'elfctl_key_create',
                             'elfctl_key_revoke', 'elfctl_notify_events', 'elfctl_notify_retry')
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
