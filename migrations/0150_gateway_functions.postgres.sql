-- 0150_gateway_functions: what the gateway process still ran as SQL, as database functions, so that
-- `elfctl gateway serve` runs on Supabase's REST API alone (SUPABASE_URL/SUPABASE_KEY): the provider
-- rate-limit write (services/resources/ratelimits.py: an upsert kept only when newer, which REST's
-- upsert cannot condition) and the alert sender's outbox steps (services/notify/outbox.py: the due
-- read joins events to deliveries; the claim takes a lease only when free). PostgresStore calls the
-- same functions. SQLite keeps the SQL in the services (0150_gateway_functions.sqlite.sql is empty).
-- Security as in 0110.

-- One provider model's rate limit (a provider_limits row as JSON), kept unless the stored row holds a
-- later observation (another gateway's).
CREATE OR REPLACE FUNCTION public.elfctl_provider_limit_save(p_limit jsonb) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $$
    INSERT INTO public.provider_limits AS t (provider, model, limit_requests, remaining_requests, limit_tokens,
                                            remaining_tokens, reset_requests_at, reset_tokens_at, observed_at)
    SELECT l.provider, l.model, l.limit_requests, l.remaining_requests, l.limit_tokens, l.remaining_tokens,
           l.reset_requests_at, l.reset_tokens_at, l.observed_at
      FROM jsonb_populate_record(NULL::public.provider_limits, p_limit) AS l
    ON CONFLICT (provider, model) DO UPDATE SET limit_requests = excluded.limit_requests,
        remaining_requests = excluded.remaining_requests, limit_tokens = excluded.limit_tokens,
        remaining_tokens = excluded.remaining_tokens, reset_requests_at = excluded.reset_requests_at,
        reset_tokens_at = excluded.reset_tokens_at, observed_at = excluded.observed_at
     WHERE t.observed_at <= excluded.observed_at
$$;

-- The sender's work for one channel: events since p_since with no delivery row for it yet, and its
-- pending (or lease-expired sending) deliveries whose next attempt time has come, oldest first, each
-- with `tried` (attempts so far). Nothing for a channel a receiver disabled (410).
CREATE OR REPLACE FUNCTION public.elfctl_notify_due(p_channel text, p_since text, p_at text, p_limit integer)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT COALESCE(jsonb_agg(to_jsonb(x) ORDER BY x.ts, x.id), '[]'::jsonb)
      FROM (SELECT e.*, d.attempts AS tried
              FROM public.notify_events e
              LEFT JOIN public.notify_deliveries d ON d.event_id = e.id AND d.channel = p_channel
             WHERE NOT EXISTS (SELECT 1 FROM public.notify_channels c WHERE c.channel = p_channel)
               AND ((d.event_id IS NULL AND e.ts >= p_since)
                    OR (d.state IN ('pending', 'sending') AND (d.next_at IS NULL OR d.next_at <= p_at)))
             ORDER BY e.ts, e.id LIMIT p_limit) AS x
$$;

-- Take one delivery until p_lease: a first attempt inserts its row (once: the primary key decides
-- between two senders), a later one moves a due row to `sending`. Returns whether this caller has it.
CREATE OR REPLACE FUNCTION public.elfctl_notify_claim(p_event_id text, p_channel text, p_attempts integer,
                                                     p_lease text, p_at text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF p_attempts = 0 THEN
        INSERT INTO public.notify_deliveries (event_id, channel, state, attempts, next_at, updated_at)
        VALUES (p_event_id, p_channel, 'sending', 0, p_lease, p_at)
        ON CONFLICT (event_id, channel) DO NOTHING;
        IF FOUND THEN
            RETURN true;
        END IF;
    END IF;
    UPDATE public.notify_deliveries SET state = 'sending', next_at = p_lease, updated_at = p_at
     WHERE event_id = p_event_id AND channel = p_channel AND state IN ('pending', 'sending')
       AND (next_at IS NULL OR next_at <= p_at);
    RETURN FOUND;
END $$;

-- One attempt's outcome (sent, pending with its next attempt, failed); with p_disable (a receiver's
-- 410 Gone), the channel is disabled in the same transaction.
CREATE OR REPLACE FUNCTION public.elfctl_notify_settle(p_event_id text, p_channel text, p_state text,
                                                      p_attempts integer, p_next_at text, p_error text,
                                                      p_at text, p_disable text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF p_disable IS NOT NULL THEN
        INSERT INTO public.notify_channels (channel, disabled_at, reason) VALUES (p_channel, p_at, p_disable)
        ON CONFLICT (channel) DO NOTHING;
    END IF;
    INSERT INTO public.notify_deliveries (event_id, channel, state, attempts, next_at, last_error, updated_at)
    VALUES (p_event_id, p_channel, p_state, p_attempts, p_next_at, p_error, p_at)
    ON CONFLICT (event_id, channel) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
        next_at = excluded.next_at, last_error = excluded.last_error, updated_at = excluded.updated_at;
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
           AND p.proname IN ('elfctl_provider_limit_save', 'elfctl_notify_due', 'elfctl_notify_claim',
                             'elfctl_notify_settle')
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
