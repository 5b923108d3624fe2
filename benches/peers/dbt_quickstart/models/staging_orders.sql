SELECT o.order_id, o.customer_id, o.product_id, o.order_date, o.status, o.quantity,
       p.category, c.country, round(o.quantity * p.price, 2) AS amount
FROM {{ ref('raw_orders') }} o
JOIN {{ ref('raw_products') }} p ON p.product_id = o.product_id
JOIN {{ ref('raw_customers') }} c ON c.customer_id = o.customer_id
WHERE o.status IN ('paid', 'shipped')
