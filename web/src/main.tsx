/** Entry: mounts the app and registers the service worker (app shell offline, notifications). */
import { render } from 'preact';
import { App } from './ui/app.js';
import './styles.css';

render(<App />, document.getElementById('app')!);

if ('serviceWorker' in navigator) {
  addEventListener('load', () => void navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => undefined));
}
