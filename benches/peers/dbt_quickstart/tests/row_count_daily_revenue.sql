SELECT 1 WHERE (SELECT count(*) FROM {{ ref('marts_daily_revenue') }}) < 90
