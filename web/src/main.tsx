/** Entry: mounts the app and registers the service worker (app shell offline, notifications). */
import { render } from 'preact';
import { App } from './ui/app.js';
import './styles.css';

const root = document.getElementById('app')!;
root.textContent = '';
render(<App />, root);

if ('serviceWorker' in navigator) {
  addEventListener('load', () => void navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => undefined));
}
