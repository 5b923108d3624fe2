SELECT category, count(*) AS orders, round(sum(amount), 2) AS revenue
FROM {{ ref('staging_orders') }} WHERE order_date = '2024-03-31' GROUP BY category
