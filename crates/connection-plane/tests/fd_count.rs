//! Takeovers must neither leak nor double-close descriptors. Alone in its binary, so no other
//! test opens or closes descriptors while they are counted.

mod common;

use common::{read_to_end, recorder, Event, Server};
use connection_plane::{ConnId, Plane, Settings};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test]
async fn two_hundred_takeovers_leave_the_descriptor_count_where_it_was() {
    let plane = Plane::new(Settings::default()).unwrap();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let before = open_fds();

    for round in 0..200 {
        let (mut client, upgraded) = server.connect().await;
        let conn = upgraded.adopt(&plane, ConnId(round), inbound.clone());
        // Every way a connection can end.
        match round % 4 {
            0 => client.close(None).await.unwrap(),
            1 => conn.close(1000, "done").unwrap(),
            2 => conn.terminate(),
            _ => {}
        }
        if round % 4 != 3 {
            read_to_end(&mut client).await;
        }
        drop(client);
        match events.next().await {
            Event::Closed(id, _, _) => assert_eq!(id, ConnId(round)),
            other => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!(open_fds(), before);
    plane.shutdown();
}
