SELECT order_date AS day, count(*) AS orders, round(sum(amount), 2) AS revenue
FROM {{ ref('staging_orders') }} GROUP BY order_date ORDER BY order_date
