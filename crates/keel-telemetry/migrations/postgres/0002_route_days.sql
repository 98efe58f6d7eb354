-- The browser routes admitted per UTC day, so that ROUTE_TELEMETRY_MAX_ROUTES can bound how many
-- distinct routes unauthenticated clients add to a day's report (later ones are stored as
-- 'other'). `day` is whole days since 1970-01-01 UTC. Pruned with the events.
CREATE TABLE keel_telemetry_route_days (
    day    integer NOT NULL,
    route  text NOT NULL CHECK (length(route) BETWEEN 1 AND 200),
    PRIMARY KEY (day, route)
);
