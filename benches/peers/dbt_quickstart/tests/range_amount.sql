SELECT * FROM {{ ref('staging_orders') }} WHERE amount < 0
