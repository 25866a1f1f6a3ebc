// Readiness check used by scripts/kafka.sh when kcat is not installed:
//   java -cp 'libs/*' Ready.java <bootstrap> <seconds>
// Exits 0 once the cluster's metadata lists at least one broker (node 1), 1 if it
// does not within <seconds> (0 = a single try).
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

public class Ready {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + Long.parseLong(args[1]) * 1_000_000_000L;
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        try (Admin admin = Admin.create(p)) {
            while (true) {
                try {
                    var nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000)).nodes().get();
                    if (nodes.stream().anyMatch(n -> n.id() == 1)) System.exit(0);
                } catch (Exception e) {
                    // not up yet
                }
                if (System.nanoTime() >= deadline) System.exit(1);
                Thread.sleep(500);
            }
        }
    }
}
