// Initiates the rs0 replica set once (compose's mongo-init service), then waits for a primary:
// the services' exactly-once state uses MongoDB transactions, which need a replica set.
const members = ["mongo-1:27017", "mongo-2:27017", "mongo-3:27017"];
try {
  rs.status();
  print("mongo-init: replica set rs0 already initiated");
} catch (e) {
  rs.initiate({ _id: "rs0", members: members.map((host, i) => ({ _id: i, host: host })) });
  print("mongo-init: replica set rs0 initiated");
}
for (let i = 0; i < 120; i++) {
  const primary = rs.status().members.find((m) => m.stateStr === "PRIMARY");
  if (primary) {
    print("mongo-init: primary is " + primary.name);
    quit(0);
  }
  sleep(1000);
}
print("mongo-init: no primary after 120 s");
quit(1);
