// TinyBase's own WebSocket sync server: the reference implementation.
import {serve} from './serve.js';

await serve(() => import('tinybase/synchronizers/synchronizer-ws-server'));
