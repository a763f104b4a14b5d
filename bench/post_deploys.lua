-- wrk script: valid POST /v2/deployments bodies, IP and coordinate players, rotated.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "token bench-0000"
local bodies = {
  '{"application":"my-game","version":"1.0.0","users":[{"user_type":"ip_address","user_data":{"ip_address":"200.147.67.142"}},{"user_type":"ip_address","user_data":{"ip_address":"177.10.20.30"}}]}',
  '{"application":"my-game","version":"1.0.0","users":[{"user_type":"geo_coordinates","user_data":{"latitude":45.5,"longitude":-73.6}},{"user_type":"geo_coordinates","user_data":{"latitude":43.6,"longitude":-79.4}}],"tags":["bench"]}',
  '{"application":"my-game","version":"1.0.0","require_cached_locations":true,"users":[{"user_type":"geo_coordinates","user_data":{"latitude":50.1,"longitude":8.7}}],"environment_variables":[{"key":"MODE","value":"ranked","is_hidden":false}]}',
  '{"application":"my-game","version":"1.1.0","users":[{"user_type":"ip_address","user_data":{"ip_address":"81.2.69.160"}},{"user_type":"geo_coordinates","user_data":{"latitude":35.7,"longitude":139.7}}]}',
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
