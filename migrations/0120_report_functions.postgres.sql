-- 0120_report_functions: the reads behind `cost report / dashboard / predict / optimize` as database
-- functions, so the aggregation runs in the database: over Supabase's REST API (`rpc`) a refresh
-- downloads a few hundred grouped rows, never the usage rows. PostgresStore calls them too
-- (`SELECT public.elfctl_x(a => ...)`), so the Postgres suite proves them; SQLite keeps its SQL in
-- the services (0120_report_functions.sqlite.sql is empty).
--
-- Each returns exactly what its service's SQL returns (services/cost/views.py, report.py,
-- predict.py, optimize.py), as jsonb: an object of arrays of rows, or an array of rows. Sums of
-- bigint columns are numeric and come out as JSON integers. Days and times are the store's text.
--
-- Security as in 0110: schema public (PostgREST calls functions only in an exposed schema),
-- `security definer` with `set search_path = ''` (every name inside schema-qualified), execute
-- revoked from PUBLIC, anon and authenticated and granted to service_role where that role exists.
-- All are STABLE (reads only): PostgREST runs them in a read-only transaction, over GET too.

-- The dashboard: counters per (day, team) over the window [p_lo, p_hi], per model over the period
-- [p_start, p_end], the budgets, and the breakers that are not closed (views._read).
CREATE OR REPLACE FUNCTION public.elfctl_dashboard(p_lo text, p_hi text, p_start text, p_end text,
                                                  p_team text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
SELECT jsonb_build_object(
    'by_day_team', (SELECT COALESCE(jsonb_agg(to_jsonb(g)), '[]'::jsonb) FROM (
        SELECT s.day, s.team, SUM(s.calls) AS calls, SUM(s.errors) AS errors, SUM(s.fallbacks) AS fallbacks,
               SUM(s.unpriced) AS unpriced, SUM(s.prompt_tokens) AS prompt_tokens,
               SUM(s.completion_tokens) AS completion_tokens, SUM(s.cached_tokens) AS cached_tokens,
               SUM(s.cost_nanousd) AS cost_nanousd
          FROM public.daily_cost_summary s
         WHERE s.day >= p_lo AND s.day <= p_hi AND (p_team IS NULL OR s.team = p_team)
         GROUP BY s.day, s.team) g),
    'by_model', (SELECT COALESCE(jsonb_agg(to_jsonb(g)), '[]'::jsonb) FROM (
        SELECT s.model, SUM(s.calls) AS calls, SUM(s.errors) AS errors, SUM(s.fallbacks) AS fallbacks,
               SUM(s.unpriced) AS unpriced, SUM(s.prompt_tokens) AS prompt_tokens,
               SUM(s.completion_tokens) AS completion_tokens, SUM(s.cached_tokens) AS cached_tokens,
               SUM(s.cost_nanousd) AS cost_nanousd
          FROM public.daily_cost_summary s
         WHERE s.day >= p_start AND s.day <= p_end AND (p_team IS NULL OR s.team = p_team)
         GROUP BY s.model) g),
    'budgets', (SELECT COALESCE(jsonb_agg(to_jsonb(b)), '[]'::jsonb) FROM (
        SELECT b.team, b.daily_nanousd, b.monthly_nanousd, b.soft_ratio, b.timezone
          FROM public.budgets b WHERE p_team IS NULL OR b.team = p_team) b),
    'breakers', (SELECT COALESCE(jsonb_agg(to_jsonb(k) ORDER BY k.name), '[]'::jsonb) FROM (
        SELECT k.name, k.state, k.opened_at FROM public.breaker_state k WHERE k.state <> 'closed') k)
)
$$;

-- `cost report --by team|model|day` from the rollup, `--by revision|agent` from api_usage per team
-- (report.report): rows in the order the service's SQL gives them. Filters left NULL do not apply.
CREATE OR REPLACE FUNCTION public.elfctl_report(p_by text, p_team text DEFAULT NULL, p_since text DEFAULT NULL,
                                               p_until text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v jsonb;
BEGIN
    IF p_by IN ('team', 'model', 'day') THEN
        SELECT COALESCE(jsonb_agg(to_jsonb(g) ORDER BY g.key), '[]'::jsonb) INTO v FROM (
            SELECT CASE p_by WHEN 'team' THEN s.team WHEN 'model' THEN s.model ELSE s.day END AS key,
                   SUM(s.calls) AS calls, SUM(s.errors) AS errors, SUM(s.fallbacks) AS fallbacks,
                   SUM(s.unpriced) AS unpriced, SUM(s.prompt_tokens) AS prompt_tokens,
                   SUM(s.completion_tokens) AS completion_tokens, SUM(s.cached_tokens) AS cached_tokens,
                   SUM(s.cost_nanousd) AS cost_nanousd
              FROM public.daily_cost_summary s
             WHERE (p_team IS NULL OR s.team = p_team) AND (p_since IS NULL OR s.day >= p_since)
               AND (p_until IS NULL OR s.day <= p_until)
             GROUP BY 1) g;
    ELSIF p_by IN ('revision', 'agent') THEN
        -- the key as jsonb keeps its type: revisions sort as numbers, agents as text (jsonb compares
        -- numbers as numeric and strings in the database's collation, as the columns themselves do)
        SELECT COALESCE(jsonb_agg(to_jsonb(g) ORDER BY g.team, g.key IS NULL, g.key), '[]'::jsonb) INTO v FROM (
            SELECT u.team, CASE p_by WHEN 'revision' THEN to_jsonb(u.revision) ELSE to_jsonb(u.agent) END AS key,
                   COUNT(*) AS calls, SUM(CASE WHEN u.outcome <> 'ok' THEN 1 ELSE 0 END) AS errors,
                   SUM(CASE WHEN u.fallback_reason IS NOT NULL AND u.fallback_reason <> '' THEN 1 ELSE 0 END) AS fallbacks,
                   SUM(CASE WHEN u.priced = 0 THEN 1 ELSE 0 END) AS unpriced, SUM(u.prompt_tokens) AS prompt_tokens,
                   SUM(u.completion_tokens) AS completion_tokens, SUM(u.cached_tokens) AS cached_tokens,
                   SUM(u.cost_nanousd) AS cost_nanousd
              FROM public.api_usage u
             WHERE (p_team IS NULL OR u.team = p_team) AND (p_since IS NULL OR u.day >= p_since)
               AND (p_until IS NULL OR u.day <= p_until)
             GROUP BY 1, 2) g;
    ELSE
        RAISE EXCEPTION 'elfctl_report: unknown grouping %', p_by USING ERRCODE = '22023';
    END IF;
    RETURN v;
END $$;

-- `cost predict`: each team's spend per day over [p_lo, p_hi], and the budgets (predict.predict).
CREATE OR REPLACE FUNCTION public.elfctl_predict(p_lo text, p_hi text, p_team text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
SELECT jsonb_build_object(
    'by_day_team', (SELECT COALESCE(jsonb_agg(to_jsonb(g)), '[]'::jsonb) FROM (
        SELECT s.day, s.team, SUM(s.cost_nanousd) AS cost FROM public.daily_cost_summary s
         WHERE s.day >= p_lo AND s.day <= p_hi AND (p_team IS NULL OR s.team = p_team)
         GROUP BY s.day, s.team) g),
    'budgets', (SELECT COALESCE(jsonb_agg(to_jsonb(b)), '[]'::jsonb) FROM (
        SELECT b.team, b.daily_nanousd, b.monthly_nanousd FROM public.budgets b
         WHERE p_team IS NULL OR b.team = p_team) b)
)
$$;

-- `cost optimize`: calls, errors, fallbacks and cost per (team, model) over [p_since, p_until], and
-- the budgets (optimize.optimize).
CREATE OR REPLACE FUNCTION public.elfctl_optimize(p_since text, p_until text, p_team text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
SELECT jsonb_build_object(
    'summary', (SELECT COALESCE(jsonb_agg(to_jsonb(g)), '[]'::jsonb) FROM (
        SELECT s.team, s.model, SUM(s.calls) AS calls, SUM(s.errors) AS errors, SUM(s.fallbacks) AS fallbacks,
               SUM(s.cost_nanousd) AS cost
          FROM public.daily_cost_summary s
         WHERE s.day >= p_since AND s.day <= p_until AND (p_team IS NULL OR s.team = p_team)
         GROUP BY s.team, s.model) g),
    'budgets', (SELECT COALESCE(jsonb_agg(to_jsonb(b)), '[]'::jsonb) FROM (
        SELECT b.team, b.daily_nanousd, b.monthly_nanousd FROM public.budgets b
         WHERE p_team IS NULL OR b.team = p_team) b)
)
$$;

-- `cost optimize`'s cheaper-model evidence: one team's successful calls to p_model in [p_since_ts,
-- p_until_ts] that would fit the cheaper model (optimize._cheaper_model). Walks api_usage_team_ts.
CREATE OR REPLACE FUNCTION public.elfctl_usage_fit(p_team text, p_since_ts text, p_until_ts text, p_model text,
                                                  p_max_in bigint, p_max_out bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
SELECT jsonb_build_object('n', COUNT(*), 'cost', SUM(u.cost_nanousd), 'pt', SUM(u.prompt_tokens),
                          'ct', SUM(u.completion_tokens), 'cached', SUM(u.cached_tokens))
  FROM public.api_usage u
 WHERE u.team = p_team AND u.ts >= p_since_ts AND u.ts <= p_until_ts AND u.model = p_model
   AND u.outcome = 'ok' AND u.prompt_tokens <= p_max_in AND u.completion_tokens <= p_max_out
$$;

-- `cost optimize`'s cache evidence: one team's prompts sent more than once in the window
-- (optimize._repeats).
CREATE OR REPLACE FUNCTION public.elfctl_repeated_prompts(p_team text, p_since_ts text, p_until_ts text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
SELECT COALESCE(jsonb_agg(to_jsonb(g)), '[]'::jsonb) FROM (
    SELECT u.prompt_hash, COUNT(*) AS n, SUM(u.cost_nanousd) AS cost FROM public.api_usage u
     WHERE u.team = p_team AND u.ts >= p_since_ts AND u.ts <= p_until_ts AND u.prompt_hash IS NOT NULL
       AND u.outcome = 'ok'
     GROUP BY u.prompt_hash HAVING COUNT(*) > 1) g
$$;

-- Execute: nobody but service_role (and the owner), as for 0110's functions.
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
           AND p.proname IN ('elfctl_dashboard', 'elfctl_report', 'elfctl_predict', 'elfctl_optimize',
                             'elfctl_usage_fit', 'elfctl_repeated_prompts')
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
