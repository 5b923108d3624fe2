SELECT customer_id, count(*) AS orders, round(sum(amount), 2) AS lifetime_value
FROM {{ ref('staging_orders') }} GROUP BY customer_id
