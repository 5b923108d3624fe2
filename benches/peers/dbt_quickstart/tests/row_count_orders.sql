SELECT 1 WHERE (SELECT count(*) FROM {{ ref('raw_orders') }}) < 1000
